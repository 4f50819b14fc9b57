"""The kubelet's DRA plugin and plugin registration gRPC services, generated.

``dra.proto`` and ``pluginregistration.proto`` are netsched's copies of the messages and
services it serves, from the kubelet's public protos (package and field numbers as
upstream); the ``*_pb2*.py`` modules are generated from them by ``make kubelet-api``
and committed, so the node image needs grpcio and protobuf but never grpcio-tools.
``tests/cni/test_kubelet_api.py`` regenerates them and fails when they differ.
"""
