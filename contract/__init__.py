"""netsched's wire contract: what its parts and the cluster say to each other.

The API group and its kinds (``group``), the objects netsched reads and writes
(``objects``), the ``netsched.io/reservation`` a bound pod carries (``reservation``), every
annotation name (``annotations``), the range of rates netsched accepts (``rates``) and the
Kubernetes quantities a pod author writes them in (``quantity``).

pydantic is the only dependency, and nothing here does I/O: the CNI plugin and the node
reporter import this package on every node without the extender's graph, numpy or FastAPI
(tests/contract checks it).
"""
