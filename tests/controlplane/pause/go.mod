module local/kube-controlplane-pause

go 1.22
