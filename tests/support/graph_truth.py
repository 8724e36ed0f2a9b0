"""What torch itself reports about a graph, computed in a child process (the tests never import torch).

    reference(code, "y") -> {"names": [...], "edges": [[src, dst, input_nr], ...], "leaves": {...}}

``names`` lists the graph's backward nodes breadth first from ``y.grad_fn`` (each node once, in the
order ``next_functions`` reaches it), ``edges`` every ``next_functions`` entry that is not
``(None, 0)`` as indices into ``names``, ``nones`` how many ``(None, 0)`` entries there are, and
``leaves`` the shape of each ``AccumulateGrad``'s variable by node index.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

CHILD = r"""
import json, sys
import torch
request = json.loads(sys.stdin.read())
ns = {"__name__": "__main__"}
exec(compile(request["code"], "<reference>", "exec"), ns)
root = ns[request["target"]]
order, index, edges, leaves, nones = [root.grad_fn], {id(root.grad_fn): 0}, [], {}, 0
i = 0
while i < len(order):
    fn = order[i]
    if hasattr(fn, "variable"):
        leaves[str(i)] = list(fn.variable.shape)
    for child, input_nr in fn.next_functions:
        if child is None:
            nones += 1
            continue
        if id(child) not in index:
            index[id(child)] = len(order)
            order.append(child)
        edges.append([i, index[id(child)], input_nr])
    i += 1
names = [fn.name().removeprefix("torch::autograd::") for fn in order]
print(json.dumps({"names": names, "edges": edges, "leaves": leaves, "nones": nones}))
"""


def reference(code: str, target: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps({"code": code, "target": target}),
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)
