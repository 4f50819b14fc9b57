"""``netsched simulate``: pods arriving and leaving a simulated cluster, placed by kube-scheduler
alone (bandwidth-blind) and by kube-scheduler with netsched, through the extender's own code."""
