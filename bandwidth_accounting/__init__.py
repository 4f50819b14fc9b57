"""Bandwidth accounting: pod requirements, the reservation ledger and the fit check.

Pure core: nothing here performs I/O. The ledger is rebuilt from the cluster's pods,
never stored anywhere else. What a pod asks for and what it holds are written in the
contract's terms (``contract.annotations``, ``contract.quantity``, ``contract.reservation``).
"""
