# Two entry points for people: `make demo` and `make test`. Both work on a fresh
# Debian machine with Python 3.11+ and root; they install what they need first.
VENV ?= .venv
PYTHON ?= python3
# Every part and the tests: the development virtualenv can run all of it.
EXTRAS := node,extender,plot,test
# What builds the native CNI thin client: a C compiler and the C library's static archive.
CNI_CLIENT_PACKAGES := gcc libc6-dev
APT_PACKAGES := iperf3 iproute2 containernetworking-plugins chromium chromium-driver ethtool iputils-ping tini \
	$(CNI_CLIENT_PACKAGES)

.PHONY: demo test bench mutate venv system-packages cni-client kubelet-api images clean

demo: venv
	$(VENV)/bin/netsched demo

test: venv system-packages cni-client
	$(VENV)/bin/pytest $(PYTEST_ARGS)

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

# The native netsched-cni thin client (cni/thin_client, C and the C library only), built
# from source as a static executable (`cc -static`; the compiler and libc.a are
# CNI_CLIENT_PACKAGES); `netsched-cni install` copies it from $(VENV)/libexec,
# deploy/Dockerfile builds its own.
CNI_CLIENT := $(VENV)/libexec/netsched-cni/netsched-cni
cni-client: $(CNI_CLIENT)

$(CNI_CLIENT): $(wildcard cni/thin_client/*.[ch]) cni/thin_client/build.sh
	$(call apt-install,$(CNI_CLIENT_PACKAGES))
	cni/thin_client/build.sh $@

# The kubelet's DRA and plugin-registration gRPC code, generated from netsched's copies of
# the kubelet protos (cni/kubelet_api/*.proto) and committed: the node image runs it
# without grpcio-tools. KUBELET_API_OUT elsewhere writes a fresh copy there instead
# (tests/cni/test_kubelet_api.py compares it with the committed one).
KUBELET_API_OUT ?= .
kubelet-api: venv
	$(VENV)/bin/python -m grpc_tools.protoc -I. --python_out=$(KUBELET_API_OUT) \
		--grpc_python_out=$(KUBELET_API_OUT) cni/kubelet_api/dra.proto \
		cni/kubelet_api/pluginregistration.proto

# Kernel tests need iperf3, iproute2 and the reference CNI plugins; browser tests need chromium;
# tests/lifecycle runs the commands behind tini, the images' init (deploy/Dockerfile).
system-packages:
	$(call apt-install,$(APT_PACKAGES))

# Installs those of the Debian packages $(1) that are missing.
define apt-install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

# The node and extender images (deploy/Dockerfile); CONTAINER=podman works too, and
# BASE=... builds on another base image than python:3.12-slim.
CONTAINER ?= docker
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
images:
	for part in node extender; do \
		$(CONTAINER) build -f deploy/Dockerfile --target $$part $(if $(BASE),--build-arg BASE=$(BASE)) \
			-t netsched-$$part:$(VERSION) . || exit 1; \
	done

# Mutation testing (mutmut; tests in pyproject.toml [tool.mutmut]); slow, not in `test`.
# The functions mutated: all of bandwidth_accounting/ (the ledger, the fit checks, policy,
# observed load, annotation parsing, address allocation, DRA devices and claims), the bind
# path (bind, _bind, _reserve) and the token-bucket shaping. One module at a time:
# `make mutate MUTATE='bandwidth_accounting.fit.*'`; on a shared machine
# `MUTATE_JOBS=1 nice -n 19 make mutate ...`. Survivors: `$(VENV)/bin/mutmut results`,
# one in detail: `$(VENV)/bin/mutmut show NAME`.
MUTATE := 'bandwidth_accounting.*' 'scheduler_extender.scheduler.*bind*' \
	'scheduler_extender.scheduler.*_reserve*' 'cni.shaping.*'
mutate: venv
	$(VENV)/bin/pip install --quiet 'mutmut>=3.3'
	$(VENV)/bin/mutmut run --max-children $${MUTATE_JOBS:-2} $(MUTATE)
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis mutants
