"""The network graph model: region → zone → switch → node → interface → network.

Pure: no I/O. Everything else in netsched asks this package which interfaces of a
node carry a network and how many hops separate two nodes.
"""
