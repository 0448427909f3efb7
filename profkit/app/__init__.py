"""The library function behind each command: ``analyze``, ``compare``, ``capture``, ``bench``/``check``, ``doctor``.

Each takes typed settings, drives capture -> parsers -> analysis -> documents -> renderers, writes the outputs
and returns what it wrote; none prints. File-level side effects that are not parsing live here too: resolving a
trace file or capture folder (``inputs``), exporting an ``.nsys-rep`` with nsys (``nsys_export``), reading
the price table (``prices``). To add a command: a function here, a typer module in ``profkit/cli/``.
"""

#: GPU events (kernels, copies, memsets) of an nsys export analyzed one by one; a larger export is analyzed in
#: detail over its first whole pipeline calls within it, and as a whole by SQL aggregates (memory bounded)
DETAIL_EVENTS = 2_000_000
