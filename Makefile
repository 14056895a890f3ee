# euca: the two commands a newcomer needs are `make run` and `make test`.
SHELL   := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
BIN     := bin/euca
RUNDIR  ?= $(CURDIR)/build/run
PORT    ?= 8773

.PHONY: build test run vet fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) .

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# The whole suite: unit, store, API and end-to-end tests with the AWS CLI
# and boto3. Tests that need what the machine lacks skip with the reason
# (under CI=true they fail instead). The end-to-end tests whose hosts are
# network namespaces of their own run four at a time (-parallel): they
# mostly wait on their clouds.
test: vet
	$(GO) test -count=1 -timeout 35m -parallel 4 ./...

# Each fuzz target for a short while (longer: make fuzz FUZZTIME=10m).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Start a cloud on this machine with its state under build/run, register
# the test guest, and print the commands that launch it (scripts/run.sh:
# as root every role, after starting libvirtd and building the guest).
# Ctrl-C stops the cloud and make exits 0; guests and their network stay
# (bin/euca network flush removes the network once no instance runs).
run: build
	RUNDIR=$(RUNDIR) PORT=$(PORT) BIN=$(BIN) scripts/run.sh

clean:
	rm -rf bin build

# --- guests and the hypervisor (hypervisor/, scripts/) ---
.PHONY: guest-image libvirt bench-hypervisor

# The test guest from Debian packages: build/guest/{vmlinuz,initrd.img,root.img}.
# Does nothing when they are up to date.
guest-image:
	scripts/guest-image.sh build/guest

# libvirtd and QEMU on a host without systemd (root; idempotent: installs
# only what is missing, starts only what is not running).
libvirt:
	scripts/libvirt-up.sh

# What the libvirt driver adds over bare virsh and qemu (root; a benchmark,
# not a test).
bench-hypervisor: guest-image libvirt
	$(GO) run ./bench/hypervisor -guest build/guest

# What the cloud adds to a launch over the bare hypervisor (root; a benchmark,
# not a test): RunInstances until the domain starts, warm and cold, against
# virsh create of the same domain XML; until the guest's console markers
# against a bare qemu-system-x86_64; launches at once against one. It runs in
# private namespaces with a libvirtd of its own (bench/launch/run.sh says why).
.PHONY: bench-launch
bench-launch: guest-image libvirt
	bench/launch/run.sh build/guest

# euca's EC2 API against moto's server, driven by the same Go client in the
# same run (a benchmark, not a test): requests per second, p50 and p99 at 1,
# 8 and 32 clients; euca over the sim driver, also with 10,000 instances.
# 20-40 min; BENCH_EC2_FLAGS="-d 5s -instances 2000" for a shorter run.
.PHONY: bench-ec2
bench-ec2:
	bench/ec2/run.sh $(BENCH_EC2_FLAGS)

# How long a security-group change takes to be in force with 1,000 groups
# of 10 rules (root; a benchmark, not a test): from a changed ruleset to
# the kernel holding it, against the same ruleset put into an empty
# namespace in the same run. BENCH_NETFILTER_FLAGS="-groups 250" for less.
.PHONY: bench-netfilter
bench-netfilter:
	bench/netfilter/run.sh $(BENCH_NETFILTER_FLAGS)

# Placement and the cluster's answers at scale, over 1,000 simulated hosts
# in one process (a benchmark, not a test): each SCHEDPOLICY's placements
# per second, 10,000 launches end to end, DescribeInstances p50/p99 of
# them, a node's death to capacity without it. BENCH_SCHED_FLAGS="-hosts 200
# -instances 2000" for a shorter run.
.PHONY: bench-sched
bench-sched:
	bench/sched/run.sh $(BENCH_SCHED_FLAGS)

# What the cloud's filter and NAT cost a guest's traffic (root; a benchmark,
# not a test): TCP throughput from a client namespace to a guest namespace
# through its elastic IP (MANAGED-NOVLAN's bridge, security group filter,
# 1:1 NAT) against the same path with routing only, in one run, and their
# ratio.
.PHONY: bench-eip
bench-eip:
	$(GO) test -run '^$$' -bench ElasticIP -benchtime 1x -count 1 ./bench/eipnat

# EBS volumes and snapshots on a cloud of its own (root; a benchmark, not a
# test; ~10 min): sequential and random I/O inside a TCG guest on a volume
# against its root disk and the volume's file on the host, and snapshot
# times (first, incremental) against cp --sparse of the volume's file, as
# ratios. Private namespaces with a libvirtd of its own (bench/ebs/run.sh).
.PHONY: bench-ebs
bench-ebs: guest-image libvirt
	bench/ebs/run.sh build/guest $(if $(BENCH_EBS_FLAGS),-- $(BENCH_EBS_FLAGS))
