"""Bandwidth accounting: quantities, pod requirements, the reservation ledger and the fit check.

Pure core: nothing here performs I/O. The ledger is rebuilt from the cluster's pods,
never stored anywhere else.
"""
