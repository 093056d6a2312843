#!/usr/bin/env bash
# Build the Debian bookworm test-bed guest for vmhealth.kvm's guest roles.
#
# Usage: build.sh <output-dir>
# Produces in <output-dir>: disk.qcow2 (ext4 on the whole disk, no partition
# table: root=/dev/vda), vmlinuz, initrd.img (direct kernel boot) and
# id_ed25519{,.pub} (root login by key). Needs root, debootstrap, e2fsprogs,
# qemu-img and ssh-keygen. The caller (guest.py) names <output-dir> after a
# hash of this file and packages.txt, so any change here means a rebuild.
set -euo pipefail

out=${1:?usage: build.sh <output-dir>}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${VMHEALTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
disk_size=${VMHEALTH_DISK_SIZE:-4G}

[ "$(id -u)" -eq 0 ] || { echo "build.sh: must run as root (debootstrap)" >&2; exit 1; }

work=$(mktemp -d "${out%/}.work.XXXXXX")
root="$work/root"
cleanup() {
  # debootstrap unmounts what it mounted; never leave anything behind.
  for m in proc sys dev/pts dev; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

include=$(grep -v '^[[:space:]]*\(#\|$\)' "$here/packages.txt" | paste -sd, -)
echo "build.sh: debootstrap $suite (minbase + $include)"
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror"

# --- system configuration -------------------------------------------------
echo vmhealth-guest > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vmhealth-guest\n' > "$root/etc/hosts"
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' > "$root/etc/fstab"
# QEMU user networking's built-in resolver.
printf 'nameserver 10.0.2.3\n' > "$root/etc/resolv.conf"

cat > "$root/etc/apt/sources.list" <<SOURCES
deb http://deb.debian.org/debian $suite main
deb http://deb.debian.org/debian $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SOURCES
# Keep the guest lean and quick under TCG.
cat > "$root/etc/apt/apt.conf.d/90vmhealth-testbed" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT

# systemd-networkd: the q35 NIC is enp0s2, so match by pattern.
mkdir -p "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/20-wired.network" <<'NET'
[Match]
Name=en*

[Network]
DHCP=ipv4
NET
ln -sf /lib/systemd/system/systemd-networkd.service \
  "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# Do not wait for "online": ssh must come up as early as possible.
ln -sf /dev/null "$root/etc/systemd/system/systemd-networkd-wait-online.service"
# Timers that would take the apt lock in the middle of a converge.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# Root login by key only.
ssh-keygen -q -t ed25519 -N '' -C vmhealth-testbed -f "$work/id_ed25519"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
cat > "$root/etc/ssh/sshd_config.d/vmhealth-testbed.conf" <<'SSHD'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
SSHD
passwd -R "$root" -l root >/dev/null

# Journal kept across reboots: the watchdog test reads the previous boot.
mkdir -p "$root/var/log/journal"

# --- kernel and disk --------------------------------------------------------
kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then
  echo "build.sh: no kernel/initrd in /boot" >&2
  exit 1
fi
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"

rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
truncate -s "$disk_size" "$work/disk.raw"
mkfs.ext4 -q -L vmhealth-root -d "$root" "$work/disk.raw"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -f "$work/disk.raw"

mkdir -p "$out"
mv "$work/disk.qcow2" "$work/vmlinuz" "$work/initrd.img" \
   "$work/id_ed25519" "$work/id_ed25519.pub" "$out/"
echo "build.sh: image ready in $out"
