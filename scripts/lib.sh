# Shared helpers for scripts/bootstrap, scripts/demo and scripts/test: step timing and the test image.
# Source it; it does not run anything by itself.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$REPO_ROOT/.venv"

# The systemd test host image. Bump the suffix whenever build_testhost_image changes, so every machine
# rebuilds it once; deploy/ansible/molecule/default/molecule.yml names the same tag.
TESTHOST_IMAGE=flask-jwt-api-testhost:debian12-v2

# The container settings that run systemd as PID 1 here (see the Molecule platform for the same list).
# --privileged fails on these machines; the capability list below is what works.
# NET_ADMIN lets the host firewall (nftables) work in the container's own network namespace.
TESTHOST_RUN_OPTS=(
  --cap-add SYS_ADMIN --cap-add NET_ADMIN
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw
  --tmpfs /run --tmpfs /run/lock
  -e container=docker
)

# step WHAT COMMAND...: run one step quietly, then print one line with what it did and how long it took.
# On failure the step's output is shown and the script stops.
step() {
  local what=$1 start=$SECONDS log
  shift
  log=$(mktemp)
  if "$@" >"$log" 2>&1; then
    printf '%-58s %4ds\n' "$what" $((SECONDS - start))
    rm -f "$log"
  else
    local rc=$?
    printf '%-58s FAILED after %ds (exit %d). Output:\n' "$what" $((SECONDS - start)) "$rc" >&2
    cat "$log" >&2
    rm -f "$log"
    exit "$rc"
  fi
}

# announce WHAT ESTIMATE: say before a slow step starts, so a quiet terminal is not mistaken for a hang.
announce() {
  printf '%s: this takes %s ...\n' "$1" "$2"
}

# The Debian mirror this machine's apt already uses, so no host name is written into the project.
apt_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [[ -z $uri ]]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
      /etc/apt/sources.list 2>/dev/null || true)
  fi
  if [[ -z $uri ]]; then
    echo "No Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list" >&2
    return 1
  fi
  echo "$uri"
}

# Build the Debian 12 image with systemd as PID 1 (a bare server as the playbook expects to find it).
# A subshell body, so the EXIT trap removes the root tree however the build ends.
build_testhost_image() (
  mirror=$(apt_mirror)
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,sudo,ca-certificates,iproute2,procps,curl \
    bookworm "$rootfs" "$mirror"
  # Behind a TLS-intercepting proxy, pip inside the host must trust the proxy's CA. An admin of such a
  # server adds the CA to the system store and points pip at it; the image does the same, so the roles
  # need not know about proxies. Machines without such certificates skip this.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
  fi
  # A debootstrapped tree keeps the mirror's package lists; a real server would refresh them anyway.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$TESTHOST_IMAGE"
)
