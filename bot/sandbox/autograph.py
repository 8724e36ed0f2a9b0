"""Reading the autograd graph of a tensor, inside the sandbox, as plain JSON-able data.

Imported by the harness (standard library at import time; torch is already loaded in the worker and
is only touched inside the functions). The graph is walked through ``grad_fn.next_functions``,
breadth first from the root, and capped at ``MAX_NODES`` nodes. What comes out is untrusted on the
way back (the learner's code ran in the same process): ``protocol.clean_graph`` checks it.

Shape of the result (``nodes[i]["id"] == i``, node 0 is the root's ``grad_fn``)::

    {"root": {"name": "y", "shape": [3], "dtype": "float32", "requires_grad": true},
     "nodes": [{"id": 0, "kind": "backward", "name": "SinBackward0",
                "saved": [{"name": "_saved_self", "shape": [3]}]},
               {"id": 3, "kind": "leaf", "name": "AccumulateGrad",
                "tensor": {"name": "x", "shape": [3], "dtype": "float32", "requires_grad": true}},
               {"id": 5, "kind": "const", "name": "None"}, ...],
     "edges": [{"src": 0, "dst": 1, "input_nr": 0, "slot": 0}, ...],   # gradients flow src -> dst
     "truncated": false, "total": 6}
"""

from __future__ import annotations

import ast
from typing import Any

MAX_NODES = 150
#: Walking stops counting here (the total is then "at least" this many).
COUNT_LIMIT = 100_000
MAX_SAVED = 8


def target_names(tree: ast.Module) -> list[str]:
    """Names assigned at the top level, in order (the last one is the default graph target)."""
    names: list[str] = []

    def collect(target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                collect(element)
        elif isinstance(target, ast.Starred):
            collect(target.value)

    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                collect(target)
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign, ast.For)):
            collect(statement.target)
        elif isinstance(statement, ast.With):
            for item in statement.items:
                if item.optional_vars is not None:
                    collect(item.optional_vars)
            inner = ast.Module(body=statement.body, type_ignores=[])
            names.extend(target_names(inner))
    return names


def keep_last_expression(tree: ast.Module, name: str) -> bool:
    """``... ; (x * 2).sin()``: a bare last expression is assigned to ``name`` so that it can be drawn."""
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        assign = ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=last.value)
        tree.body[-1] = ast.copy_location(assign, last)
        ast.fix_missing_locations(tree)
        return True
    return False


def extract(namespace: dict[str, Any], names: list[str], target: str) -> dict[str, Any]:
    """``{"graph": {...}}`` or ``{"problem": {"reason": ..., "name": ...}}``."""
    import torch

    if target:
        if target not in namespace:
            return {"problem": {"reason": "not_found", "name": target}}
        value = namespace[target]
        if not isinstance(value, torch.Tensor):
            return {"problem": {"reason": "not_tensor", "name": target, "type": type(value).__name__}}
        name = target
    else:
        name = next((n for n in reversed(names) if isinstance(namespace.get(n), torch.Tensor)), "")
        if not name:
            return {"problem": {"reason": "no_tensor", "name": ""}}
        value = namespace[name]
    if value.grad_fn is None:
        reason = "leaf" if value.requires_grad else "no_grad"
        return {"problem": {"reason": reason, "name": name, "shape": _shape(value)}}
    return {"graph": walk(value, name, _names_of_tensors(namespace))}


def walk(root: Any, root_name: str, names: dict[int, str]) -> dict[str, Any]:
    ids: dict[int, int] = {}
    order: list[Any] = []
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    total = 0
    truncated = False

    def visit(fn: Any) -> int | None:
        nonlocal total, truncated
        key = id(fn)
        if key in ids:
            return ids[key]
        total += 1
        if len(ids) >= MAX_NODES:
            truncated = True
            return None
        ids[key] = len(order)
        order.append(fn)
        return ids[key]

    visit(root.grad_fn)
    seen_all: set[int] = {id(root.grad_fn)}
    index = 0
    counting: list[Any] = []  # nodes past the cap: only counted
    consts = 0
    while index < len(order):
        fn = order[index]
        nodes.append(_node(fn, index, names))
        for slot, (child, input_nr) in enumerate(_next_functions(fn)):
            if child is None:
                consts += 1
                if consts > MAX_NODES:
                    truncated = True
                    continue
                const_id = -1 - len(edges)  # placed after the walk
                edges.append({"src": index, "dst": const_id, "input_nr": int(input_nr), "slot": slot})
                continue
            if id(child) not in seen_all:
                seen_all.add(id(child))
                if visit(child) is None:
                    counting.append(child)
                    continue
            elif id(child) not in ids:
                continue
            edges.append({"src": index, "dst": ids[id(child)], "input_nr": int(input_nr), "slot": slot})
        index += 1
    # Count what lies beyond the cap (without keeping it), up to COUNT_LIMIT.
    while counting and total < COUNT_LIMIT:
        fn = counting.pop()
        for child, _ in _next_functions(fn):
            if child is not None and id(child) not in seen_all:
                seen_all.add(id(child))
                total += 1
                counting.append(child)
    # (None, 0) inputs: one constant node each.
    for edge in edges:
        if edge["dst"] < 0:
            edge["dst"] = len(nodes)
            nodes.append({"id": len(nodes), "kind": "const", "name": "None"})
    return {
        "root": {"name": root_name, **_tensor_info(root)},
        "nodes": nodes,
        "edges": edges,
        "truncated": truncated,
        "total": total if truncated else len([n for n in nodes if n["kind"] != "const"]),
    }


def _next_functions(fn: Any) -> tuple[Any, ...]:
    try:
        return tuple(fn.next_functions)
    except Exception:
        return ()


def _node(fn: Any, index: int, names: dict[int, str]) -> dict[str, Any]:
    try:
        label = str(fn.name()).removeprefix("torch::autograd::")
    except Exception:
        label = type(fn).__name__
    variable = getattr(fn, "variable", None) if label.endswith("AccumulateGrad") else None
    if variable is not None:
        info = _tensor_info(variable)
        return {"id": index, "kind": "leaf", "name": label,
                "tensor": {"name": names.get(id(variable), ""), **info}}
    return {"id": index, "kind": "backward", "name": label, "saved": _saved(fn)}


def _saved(fn: Any) -> list[dict[str, Any]]:
    import torch

    saved: list[dict[str, Any]] = []
    try:
        attributes = [a for a in dir(fn) if a.startswith("_saved_")]
    except Exception:
        return saved
    for attribute in attributes[:MAX_SAVED]:
        item: dict[str, Any] = {"name": attribute}
        try:
            value = getattr(fn, attribute)
        except Exception:  # freed by a backward pass
            item["freed"] = True
            saved.append(item)
            continue
        if isinstance(value, torch.Tensor):
            item["shape"] = _shape(value)
        elif isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
            item["shapes"] = [_shape(v) for v in value[:MAX_SAVED]]
        else:
            item["value"] = repr(value)[:40]
        saved.append(item)
    return saved


def _shape(tensor: Any) -> list[int]:
    try:
        return [int(d) for d in tensor.shape][:8]
    except Exception:
        return []


def _tensor_info(tensor: Any) -> dict[str, Any]:
    try:
        dtype = str(tensor.dtype).removeprefix("torch.")
    except Exception:
        dtype = ""
    return {"shape": _shape(tensor), "dtype": dtype, "requires_grad": bool(tensor.requires_grad)}


def _names_of_tensors(namespace: dict[str, Any]) -> dict[int, str]:
    """id(tensor) -> a name for it: top-level variables, then parameters of top-level modules."""
    import torch

    names: dict[int, str] = {}
    for name, value in list(namespace.items()):
        if name.startswith("__"):
            continue
        if isinstance(value, torch.Tensor):
            names.setdefault(id(value), name)
    for name, value in list(namespace.items()):
        if isinstance(value, torch.nn.Module):
            try:
                for pname, parameter in list(value.named_parameters())[:500]:
                    names.setdefault(id(parameter), f"{name}.{pname}")
            except Exception:
                continue
    return names
