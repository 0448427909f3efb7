"""``profkit load``: closed- and open-loop load tests of an HTTP endpoint, measured exactly.

Locust (which patches the standard library with gevent on import) runs only in child processes: one local load
process (``python -m profkit.load.worker``) or Locust's master and workers (``python -m profkit.load.distributed``);
this package's other modules never import it, nor torch.
"""
