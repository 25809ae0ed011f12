#!/bin/sh
# VmTools guest setup: installs the agent payload carried on the cloud-init seed image.
# Run by cloud-init's runcmd. Safe to run again: every step overwrites or is a no-op when done.
# Never waits for cloud-init to finish: it runs inside cloud-init, which would wait for itself.
set -u

LABEL="${VMTOOLS_SEED_LABEL:-@@LABEL@@}"
PAYLOAD_NAME="${VMTOOLS_PAYLOAD_NAME:-@@PAYLOAD@@}"
SERVICE="${VMTOOLS_AGENT_SERVICE:-@@SERVICE@@}"
MOUNT_DIR="${VMTOOLS_SEED_MOUNT:-/run/vmtools-seed}"
CONFIG_DIR="${VMTOOLS_AGENT_CONFIG_DIR:-/etc/flightctl}"
REGISTRY_CONF="${VMTOOLS_REGISTRY_CONF:-/etc/containers/registries.conf.d/custom-registry.conf}"
CONSOLES="${VMTOOLS_CONSOLES-/dev/console /dev/ttyS0}"
MOUNTED_HERE=0

say() {
    echo "$1"
    # The console is what a CI log shows; the serial port may be the only console.
    for tty in $CONSOLES; do
        if [ -c "$tty" ] && [ -w "$tty" ]; then
            echo "$1" 2>/dev/null >"$tty" || true
        fi
    done
}

fail() {
    say "VMTOOLS-SETUP: FAILED $1${2:+ ($2)}"
    cleanup
    exit 1
}

cleanup() {
    if [ "$MOUNTED_HERE" = 1 ]; then
        umount "$MOUNT_DIR" 2>/dev/null || true
    fi
}

find_seed_device() {
    dev=""
    if command -v blkid >/dev/null 2>&1; then
        dev=$(blkid -L "$LABEL" 2>/dev/null || true)
        [ -n "$dev" ] || dev=$(blkid -L "$(echo "$LABEL" | tr '[:lower:]' '[:upper:]')" 2>/dev/null || true)
    fi
    if [ -z "$dev" ] && [ -e "/dev/disk/by-label/$LABEL" ]; then
        dev=$(readlink -f "/dev/disk/by-label/$LABEL")
    fi
    echo "$dev"
}

# 1. Find the payload: already mounted (a previous run, or the caller's override), else mount the seed read-only.
PAYLOAD="${VMTOOLS_PAYLOAD_DIR:-}"
if [ -z "$PAYLOAD" ]; then
    dev=$(find_seed_device)
    [ -n "$dev" ] || fail find-seed "no block device labelled $LABEL"
    existing=$(awk -v d="$dev" '$1 == d { print $2; exit }' /proc/mounts)
    if [ -n "$existing" ]; then
        MOUNT_DIR="$existing"
    else
        mkdir -p "$MOUNT_DIR" || fail mount-seed "cannot create $MOUNT_DIR"
        mount -o ro "$dev" "$MOUNT_DIR" || fail mount-seed "mount $dev"
        MOUNTED_HERE=1
    fi
    PAYLOAD="$MOUNT_DIR/$PAYLOAD_NAME"
fi
[ -f "$PAYLOAD/config.yaml" ] || fail find-payload "$PAYLOAD/config.yaml missing"

# 2. Packages, with the guest's own package manager; installing an installed package is a no-op.
if [ -d "$PAYLOAD/packages" ]; then
    rpms=$(find "$PAYLOAD/packages" -maxdepth 1 -name '*.rpm' | sort)
    debs=$(find "$PAYLOAD/packages" -maxdepth 1 -name '*.deb' | sort)
    if [ -n "$rpms" ]; then
        if command -v dnf >/dev/null 2>&1; then
            # shellcheck disable=SC2086 # one argument per package file; names come from our own image
            dnf install -y $rpms || fail install-packages dnf
        elif command -v rpm >/dev/null 2>&1; then
            # shellcheck disable=SC2086
            rpm -U --replacepkgs $rpms || fail install-packages rpm
        else
            fail install-packages "rpm packages but no dnf or rpm"
        fi
    fi
    if [ -n "$debs" ]; then
        if command -v apt-get >/dev/null 2>&1; then
            # shellcheck disable=SC2086
            DEBIAN_FRONTEND=noninteractive apt-get install -y $debs || fail install-packages apt-get
        elif command -v dpkg >/dev/null 2>&1; then
            # shellcheck disable=SC2086
            dpkg -i $debs || fail install-packages dpkg
        else
            fail install-packages "deb packages but no apt-get or dpkg"
        fi
    fi
fi

# 3. Agent config (0644) and certificates (0600).
mkdir -p "$CONFIG_DIR/certs" || fail install-config "mkdir $CONFIG_DIR"
install -m 0644 "$PAYLOAD/config.yaml" "$CONFIG_DIR/config.yaml" || fail install-config
for cert in "$PAYLOAD"/certs/*; do
    [ -f "$cert" ] || fail install-certs "no certificates in $PAYLOAD/certs"
    install -m 0600 "$cert" "$CONFIG_DIR/certs/$(basename "$cert")" || fail install-certs "$cert"
done

# 4. Trust the CA with whichever tool the distribution has.
if [ -f "$PAYLOAD/ca.pem" ]; then
    if command -v update-ca-trust >/dev/null 2>&1; then
        mkdir -p /etc/pki/ca-trust/source/anchors
        install -m 0644 "$PAYLOAD/ca.pem" /etc/pki/ca-trust/source/anchors/vmtools-ca.pem || fail trust-ca copy
        update-ca-trust || fail trust-ca update-ca-trust
    elif command -v update-ca-certificates >/dev/null 2>&1; then
        mkdir -p /usr/local/share/ca-certificates
        install -m 0644 "$PAYLOAD/ca.pem" /usr/local/share/ca-certificates/vmtools-ca.crt || fail trust-ca copy
        update-ca-certificates || fail trust-ca update-ca-certificates
    else
        fail trust-ca "neither update-ca-trust nor update-ca-certificates"
    fi
fi

# 5. Container registry settings.
if [ -f "$PAYLOAD/registry.conf" ]; then
    mkdir -p "$(dirname "$REGISTRY_CONF")" || fail registry-config mkdir
    install -m 0644 "$PAYLOAD/registry.conf" "$REGISTRY_CONF" || fail registry-config
fi

# 6. The agent service: enable for later boots, start now, and check it stayed up.
if [ "${VMTOOLS_SKIP_SERVICE:-0}" != 1 ]; then
    command -v systemctl >/dev/null 2>&1 || fail start-service "no systemctl"
    systemctl enable "$SERVICE" || fail enable-service "$SERVICE"
    systemctl restart "$SERVICE" || fail start-service "$SERVICE"
    systemctl is-active --quiet "$SERVICE" || { systemctl status --no-pager "$SERVICE" || true; fail start-service "$SERVICE is not active"; }
fi

cleanup
say "VMTOOLS-SETUP: OK"
