# Shared settings and helpers of the test-environment scripts (sourced, not run).
# Everything the rig builds is cached outside the repository, keyed by version, so a
# warm machine rebuilds nothing and a version bump rebuilds only what changed.
set -euo pipefail

K8S_VERSION="${SERIN_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${SERIN_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${SERIN_KWOK_VERSION:-v0.8.0}"
GATEWAY_API_VERSION="${SERIN_GATEWAY_API_VERSION:-v1.4.0}"
# The traffic providers' CRDs, read from their Go modules at set-up time (control-plane.md).
# Gloo's module is refused by the Go proxy (403), so tests/env/crds/gloo.yaml stands in for it.
ISTIO_API_VERSION="${SERIN_ISTIO_API_VERSION:-v1.31.1}"
CONTOUR_VERSION="${SERIN_CONTOUR_VERSION:-v1.33.8}"
APISIX_VERSION="${SERIN_APISIX_VERSION:-v1.8.4}"

CACHE_ROOT="${SERIN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/serin/testenv}"
K8S_BIN="$CACHE_ROOT/kubernetes-$K8S_VERSION/bin"
ETCD_BIN="$CACHE_ROOT/etcd-$ETCD_VERSION/bin"
KWOK_BIN="$CACHE_ROOT/kwok-$KWOK_VERSION/bin"

# One running environment per work dir; SERIN_TESTENV_DIR lets tests and humans share one.
WORK_DIR="${SERIN_TESTENV_DIR:-${TMPDIR:-/tmp}/serin-testenv}"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

T0=$SECONDS
step_start=$SECONDS
step() {
	step_start=$SECONDS
	printf '[%4ss] %s\n' "$((SECONDS - T0))" "$*"
}
step_done() {
	printf '[%4ss]   done in %ss\n' "$((SECONDS - T0))" "$((SECONDS - step_start))"
}
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# The directory of a downloaded Go module (downloading it if needed).
module_dir() {
	go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# The CRD file of a provider module (MODULE@VERSION), inside the module cache.
provider_crd_file() {
	local dir
	dir=$(module_dir "$1") || return 1
	case "$1" in
	istio.io/api@*) echo "$dir/kubernetes/customresourcedefinitions.gen.yaml" ;;
	github.com/projectcontour/contour@*) echo "$dir/examples/contour/01-crds.yaml" ;;
	github.com/apache/apisix-ingress-controller@*) echo "$dir/samples/deploy/crd/v1/ApisixRoute.yaml" ;;
	*) return 1 ;;
	esac
}

# Components in start order; `down` stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok prometheus)

pid_of() {
	local f="$WORK_DIR/pids/$1"
	[[ -f "$f" ]] && cat "$f"
}
alive() {
	local pid
	pid=$(pid_of "$1") || return 1
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# Resident memory (KiB) of a component's whole process group.
rss_kib() {
	local pid total=0 p v
	pid=$(pid_of "$1") || { echo 0; return; }
	for p in $(pgrep -g "$pid" 2>/dev/null); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

load_env_file() {
	[[ -f "$WORK_DIR/env" ]] || return 1
	# shellcheck disable=SC1091
	source "$WORK_DIR/env"
}
