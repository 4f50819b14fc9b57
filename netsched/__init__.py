"""The ``netsched`` command line and the tools around the deployed parts (the CRD generator).

It composes the other packages (``netsched serve`` puts the dashboard beside the webhook,
``netsched simulate`` runs the simulator) and nothing of ours imports it back.
"""
