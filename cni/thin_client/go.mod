module netsched/cni/thin_client

go 1.22
