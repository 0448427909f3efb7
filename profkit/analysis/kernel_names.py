"""Short, readable kernel names: ``void at::native::elementwise_kernel<128, 4, ...CUDAFunctor_add<c10::Half>...>(...)``
-> ``elementwise_kernel<…> [CUDAFunctor_add]``. Pure string work; the full name is always kept beside it."""

from __future__ import annotations

import functools
import re

#: Longest short name; longer ones end in an ellipsis.
MAX_LENGTH = 72
#: Kernel templates whose own name says nothing (CUTLASS's ``Kernel2<cutlass_80_..._gemm...>``): show their first
#: template argument instead.
GENERIC = frozenset({"Kernel", "Kernel2", "kernel", "device_kernel", "KernelWrapper", "kernel_entry"})
_IDENT = re.compile(r"[A-Za-z_]\w*")
_FUNCTOR = re.compile(r"(?:^|::)(\w*(?:Functor|functor|_op|Op)\w*)")


def _split_template(text: str) -> tuple[str, str, str]:
    """``name<args>rest`` at the first top-level ``<`` -> (name, args, rest); no template -> (text, "", "")."""
    start = text.find("<")
    if start <= 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
        return text, "", ""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "<":
            depth += 1
        elif text[index] == ">":
            depth -= 1
            if depth == 0:
                return text[:start], text[start + 1 : index], text[index + 1 :]
    return text[:start], text[start + 1 :], ""


def _strip_arguments(text: str) -> str:
    """Drop the parameter list: a ``(`` right after an identifier or ``>`` (not ``Memcpy HtoD (Pageable)``)."""
    depth = 0
    for index, char in enumerate(text):
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        elif char == "(" and depth == 0 and index and (text[index - 1].isalnum() or text[index - 1] in "_>"):
            return text[:index]
    return text


def _last_component(qualified: str) -> str:
    """``at::native::(anonymous namespace)::foo`` -> ``foo`` (only ``::`` outside template brackets count)."""
    depth, cut = 0, 0
    for index, char in enumerate(qualified):
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        elif char == ":" and depth == 0 and qualified[index : index + 2] == "::":
            cut = index + 2
    return qualified[cut:].strip()


@functools.lru_cache(maxsize=8192)
def short_kernel_name(name: str, limit: int = MAX_LENGTH) -> str:
    """A readable name for a (possibly templated, namespaced C++) kernel name; plain names come back unchanged."""
    text = name.strip()
    if not any(mark in text for mark in ("<", "::", "void ")) and "(" not in text.replace(" (", ""):
        return text if len(text) <= limit else text[: limit - 1] + "…"
    text = text.replace("(anonymous namespace)::", "")
    text = re.sub(r"^(?:void|static|__global__)\s+", "", text)
    text = _strip_arguments(text)
    head, args, rest = _split_template(text)
    base = _last_component(head) or head
    if base == "enable_if" and rest.startswith("::type "):  # SFINAE return type before the kernel's own name
        return short_kernel_name(rest[len("::type ") :], limit)
    short = base
    if args:
        short = f"{base}<…>"
        first = _split_template(args.split(",")[0].strip())[0]
        functor = _FUNCTOR.search(args)
        if base in GENERIC and _IDENT.fullmatch(_last_component(first) or ""):
            short = f"{base}<{_last_component(first)}>"
        elif functor and functor.group(1) != base:
            short = f"{base}<…> [{functor.group(1)}]"
    return short if len(short) <= limit else short[: limit - 1] + "…"
