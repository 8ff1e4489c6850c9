#!/usr/bin/env bash
# A second Docker engine on this machine that really is another host, for the
# tests of bottles on a remote docker context (issue 17): its own network
# namespace (a veth pair, 10.203.0.1/30 here and 10.203.0.2/30 there, and no
# other route), its own mount, pid, uts and ipc namespaces with a Debian
# bookworm root filesystem it pivots into (so no path of the client exists
# there), its own data root. It answers as tcp://10.203.0.2:2376 with TLS
# client certificates and as ssh://root@10.203.0.2 (key auth; the far side's
# docker CLI runs `docker system dial-stdio`).
#
#   up    start it (idempotent: a running engine is left as it is); the root
#         filesystem is debootstrapped once and cached as a tarball
#   down  stop it and remove everything up made (processes, namespaces, veth,
#         mounts, the state dir); the cached tarball stays
#   env   print what a client needs, as NAME=VALUE lines: the DOCKER_CONFIG
#         holding the contexts remote-tls and remote-ssh, and the dir to put
#         first on PATH so the docker CLI's ssh uses the harness's key
#
# Needs root, debootstrap (bash hack/tools.sh debootstrap), openssl, ssh,
# iproute2 and util-linux's unshare/nsenter. Packages come from the Debian
# mirror DOCKER_BOTTLE_TEST_DEBIAN_MIRROR (as hack/debian-base.sh).
set -euo pipefail

ns=docker-bottle-remote
host_if=dbremote0
host_ip=10.203.0.1
far_ip=10.203.0.2
state=${DOCKER_BOTTLE_REMOTE_STATE:-/var/tmp/docker-bottle-remote}
mirror=${DOCKER_BOTTLE_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
gopath=${GOPATH:-$(go env GOPATH 2>/dev/null || echo "$HOME/go")}
cache=${DOCKER_BOTTLE_REMOTE_CACHE:-$gopath/share/docker-bottle}
# The tarball's name says what it holds: change the package list, change it.
rootfs_tar=$cache/remote-engine-bookworm-1.tar
packages=docker.io,openssh-server,iproute2,ca-certificates,procps

say() { echo "remote-engine: $*" >&2; }
die() { say "$*"; exit 1; }

tls_up() {
	[ -f "$state/client/ca.pem" ] || return 1
	DOCKER_CONFIG=$state/docker-config docker --context remote-tls version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# harness_pid prints the pid of the unshare that up started, from the pid
# file, and fails when that process is gone: a stale pid file's pid may be
# another process's now, whose children down must never kill. up's unshare
# is named unshare and has this state dir's init.sh among its arguments.
harness_pid() {
	local pid
	[ -f "$state/pid" ] || return 1
	pid=$(cat "$state/pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = unshare ] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$state/init.sh" || return 1
	echo "$pid"
}

running() { harness_pid >/dev/null; }

make_rootfs() {
	[ -f "$rootfs_tar" ] && return 0
	command -v debootstrap >/dev/null || die "install debootstrap (bash hack/tools.sh debootstrap)"
	say "debootstrapping Debian bookworm with $packages (once; cached in $rootfs_tar)"
	mkdir -p "$cache"
	local work
	work=$(mktemp -d "$cache/.rootfs.XXXXXX")
	if ! debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "$mirror" >"$work/log" 2>&1; then
		tail -n 40 "$work/log" >&2
		rm -rf "$work"
		die "debootstrap failed (mirror $mirror; set DOCKER_BOTTLE_TEST_DEBIAN_MIRROR to another)"
	fi
	rm -rf "$work/rootfs/var/cache/apt/archives" "$work/rootfs/var/lib/apt/lists"
	tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
	mv "$work/rootfs.tar" "$rootfs_tar"
	rm -rf "$work"
}

make_pki() {
	local d=$state/pki
	mkdir -p "$d" "$state/client"
	(
		cd "$d"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj /CN=docker-bottle-remote-ca -keyout ca-key.pem -out ca.pem 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=remote-engine \
			-keyout server-key.pem -out server.csr 2>/dev/null
		printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$far_ip" >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
			-extfile server.ext -out server.pem 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=docker-bottle-client \
			-keyout key.pem -out client.csr 2>/dev/null
		printf 'extendedKeyUsage=clientAuth\n' >client.ext
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
			-extfile client.ext -out cert.pem 2>/dev/null
	)
	cp "$d/ca.pem" "$d/cert.pem" "$d/key.pem" "$state/client/"
	ssh-keygen -q -t ed25519 -N '' -C docker-bottle-remote -f "$state/client/id_ed25519"
}

# The far side's /init: runs as pid 1 of the new pid namespace, inside the
# new mount namespace, and pivots into the root filesystem.
write_init() {
	cat >"$state/init.sh" <<'EOF'
set -eu
root=$1
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
hostname remote-engine
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /run/sshd
/usr/sbin/sshd -E /var/log/sshd.log -o ListenAddress=10.203.0.2 -o PasswordAuthentication=no
dockerd -H unix:///var/run/docker.sock -H tcp://10.203.0.2:2376 --tlsverify \
	--tlscacert /etc/docker/tls/ca.pem --tlscert /etc/docker/tls/server.pem --tlskey /etc/docker/tls/server-key.pem \
	--cgroup-parent docker-bottle-remote --data-root /var/lib/docker >/var/log/dockerd.log 2>&1 &
wait
EOF
}

# The client-side tools, from Debian when missing (a fresh machine may lack
# the ssh client).
need_tools() {
	local missing=()
	command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
	command -v openssl >/dev/null || missing+=(openssl)
	command -v unshare >/dev/null && command -v nsenter >/dev/null || missing+=(util-linux)
	command -v ip >/dev/null || missing+=(iproute2)
	command -v pgrep >/dev/null || missing+=(procps)
	[ ${#missing[@]} = 0 ] && return 0
	command -v apt-get >/dev/null || die "install ${missing[*]}"
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

up() {
	[ "$(id -u)" = 0 ] || die "needs root (namespaces, mounts, a veth pair)"
	need_tools
	if running && tls_up; then
		say "already up"
		return 0
	fi
	down_quiet
	local t0=$SECONDS
	make_rootfs
	mkdir -p "$state/rootfs"
	tar -C "$state/rootfs" -xf "$rootfs_tar"
	make_pki
	mkdir -p "$state/rootfs/etc/docker/tls" "$state/rootfs/root/.ssh"
	cp "$state/pki/ca.pem" "$state/pki/server.pem" "$state/pki/server-key.pem" "$state/rootfs/etc/docker/tls/"
	install -m 600 "$state/client/id_ed25519.pub" "$state/rootfs/root/.ssh/authorized_keys"
	# A host key of this up's own, not the one cached in the tarball.
	rm -f "$state"/rootfs/etc/ssh/ssh_host_*
	ssh-keygen -q -t ed25519 -N '' -C remote-engine -f "$state/rootfs/etc/ssh/ssh_host_ed25519_key"
	chmod 700 "$state/rootfs/root/.ssh"

	ip netns add "$ns"
	ip link add "$host_if" type veth peer name eth0 netns "$ns"
	ip addr add "$host_ip/30" dev "$host_if"
	ip link set "$host_if" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$far_ip/30" dev eth0
	ip -n "$ns" link set eth0 up

	write_init
	# --kill-child: when unshare dies, so does the far side's pid 1, and with
	# it every process of the pid namespace (down relies on this).
	setsid nsenter --net="/run/netns/$ns" -- \
		unshare --mount --uts --ipc --pid --fork --kill-child --propagation private \
		bash "$state/init.sh" "$state/rootfs" </dev/null >"$state/init.log" 2>&1 &
	echo $! >"$state/pid"

	# The client side: an ssh that uses the harness's key and known host,
	# found first on PATH, and a DOCKER_CONFIG with both contexts.
	mkdir -p "$state/bin" "$state/docker-config"
	cat >"$state/ssh_config" <<EOF
Host $far_ip
	User root
	IdentityFile $state/client/id_ed25519
	IdentitiesOnly yes
	UserKnownHostsFile $state/known_hosts
	StrictHostKeyChecking yes
	BatchMode yes
EOF
	printf '%s %s\n' "$far_ip" "$(cut -d' ' -f1,2 "$state/rootfs/etc/ssh/ssh_host_ed25519_key.pub")" >"$state/known_hosts"
	printf '#!/bin/sh\nexec %s -F %s "$@"\n' "$(command -v ssh)" "$state/ssh_config" >"$state/bin/ssh"
	chmod 755 "$state/bin/ssh"
	export DOCKER_CONFIG=$state/docker-config
	docker context create remote-tls --description "docker-bottle test harness (tcp+TLS)" \
		--docker "host=tcp://$far_ip:2376,ca=$state/client/ca.pem,cert=$state/client/cert.pem,key=$state/client/key.pem" >/dev/null 2>&1
	docker context create remote-ssh --description "docker-bottle test harness (ssh)" \
		--docker "host=ssh://root@$far_ip" >/dev/null 2>&1

	for _ in $(seq 1 120); do
		tls_up && break
		running || break
		sleep 0.5
	done
	if ! tls_up; then
		cat "$state/init.log" >&2 || true
		tail -n 30 "$state/rootfs/var/log/dockerd.log" >&2 || true
		down_quiet
		die "the remote engine did not come up"
	fi
	if ! PATH="$state/bin:$PATH" docker --context remote-ssh version --format '{{.Server.Version}}' >/dev/null 2>"$state/ssh.err"; then
		cat "$state/ssh.err" >&2
		down_quiet
		die "the remote engine does not answer over ssh"
	fi
	say "up in $((SECONDS - t0))s: tcp://$far_ip:2376 (TLS) and ssh://root@$far_ip"
}

pidns=
down_quiet() {
	local pid
	if pid=$(harness_pid); then
		# What down checks afterwards: no process is left in it.
		pidns=$(readlink "/proc/$(pgrep -P "$pid" | head -n1)/ns/pid" 2>/dev/null || true)
		# unshare ignores SIGTERM while it waits for its child: kill the
		# far side's pid 1, which takes its whole pid namespace with it
		# (dockerd, containerd, containers, sshd), and unshare then exits.
		kill -9 $(pgrep -P "$pid") 2>/dev/null || true
		for _ in $(seq 1 50); do
			harness_pid >/dev/null || break
			sleep 0.1
		done
		if harness_pid >/dev/null; then
			kill -9 "$pid" 2>/dev/null || true
		fi
	elif [ -f "$state/pid" ]; then
		say "pid $(cat "$state/pid") of $state/pid is not the harness's unshare any more: killing nothing, removing the state"
	fi
	# A process left in the namespace (none should be: its pid 1 took them
	# down) would keep it; say so rather than leave it silently.
	if ip netns pids "$ns" >/dev/null 2>&1; then
		local left
		left=$(ip netns pids "$ns" || true)
		if [ -n "$left" ]; then
			kill -9 $left 2>/dev/null || true
			sleep 0.5
		fi
		ip netns del "$ns" 2>/dev/null || true
	fi
	ip link del "$host_if" 2>/dev/null || true
	rm -rf "$state"
}

down() {
	[ "$(id -u)" = 0 ] || die "needs root"
	down_quiet
	local p
	if [ -n "$pidns" ]; then
		for p in /proc/[0-9]*; do
			[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$pidns" ] && die "process ${p#/proc/} still runs in the remote engine's pid namespace"
		done
	fi
	grep -q " $state/" /proc/self/mountinfo && die "a mount under $state is still there"
	ip netns list | grep -qw "$ns" && die "network namespace $ns is still there"
	ip link show "$host_if" >/dev/null 2>&1 && die "veth $host_if is still there"
	say "down"
}

env_() {
	running && [ -d "$state/docker-config" ] || die "not up: run bash hack/remote-engine.sh up"
	echo "DOCKER_BOTTLE_REMOTE_CONFIG=$state/docker-config"
	echo "DOCKER_BOTTLE_REMOTE_TLS_CONTEXT=remote-tls"
	echo "DOCKER_BOTTLE_REMOTE_SSH_CONTEXT=remote-ssh"
	echo "DOCKER_BOTTLE_REMOTE_PATH=$state/bin"
	echo "DOCKER_BOTTLE_REMOTE_ADDR=$far_ip"
}

# Sourced (by its test, hack/remote-engine-test.sh), it only defines.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
case ${1:-} in
up) up ;;
down) down ;;
env) env_ ;;
*) die "usage: hack/remote-engine.sh up|down|env" ;;
esac
