#!/bin/bash
# inside.sh -- the install test's half that runs in the booted Debian 12
# container (systemd is PID 1 there), as root, started by test_install.sh
# through a oneshot unit. Arguments in /root/inside.args: the kind (deb or
# rpm), the package file, a newer version of it (for the upgrade) and three
# free ports (proxy, control API, model). Prints one line per check and
# RESULT PASS or RESULT FAIL last.
set -u
read -r kind pkg newer pport aport mport < /root/inside.args
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
fails=0

ok() { echo "ok   $*"; }
no() { echo "FAIL $*"; fails=$((fails + 1)); }
# check DESCRIPTION COMMAND...: passes when the command does.
check() {
	local desc=$1
	shift
	if "$@" > /tmp/out 2>&1; then
		ok "$desc"
	else
		no "$desc: $(head -c 600 /tmp/out | tr '\n' ' ')"
	fi
}
# eventually SECONDS COMMAND...: the command passes before the deadline.
eventually() {
	local end=$((SECONDS + $1))
	shift
	until "$@" > /dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}
is() { [ "$1" = "$2" ] || { echo "got '$1', want '$2'"; return 1; }; }
chat() {
	local code
	code=$(curl -s -o /tmp/chat.json -w '%{http_code}' --max-time 60 \
	    "http://127.0.0.1:$pport/v1/chat/completions" \
	    -H 'Content-Type: application/json' \
	    -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}")
	is "$code" 200 && grep -q '"choices"' /tmp/chat.json
}
unit_path() { systemctl show -P FragmentPath "$1"; }
mainpid() { systemctl show -P MainPID "$1"; }
alive() { [ -n "$1" ] && kill -0 "$1"; }
# The model's processes (anchored: a shell whose command line holds the
# pattern must not count).
model_pids() { pgrep -u llmux-engine -f '^/usr/bin/llmux-fakevllm serve tiny'; }
no_model() { ! pgrep -f '^/usr/bin/llmux-fakevllm serve' > /dev/null; }
no_supervisor() { ! pgrep -f '^/usr/sbin/llmux-supervisord' > /dev/null; }
# diagnose WHAT: after a failure since the last call, the daemons'
# journal, the status and the processes.
reported=0
diagnose() {
	[ $fails -gt $reported ] || return 0
	reported=$fails
	echo "--- for $1:"
	journalctl --no-pager -u llmux-supervisord -u llmux-proxyd | tail -40
	llmuxctl status
	cat /var/log/llmux/*.log 2>/dev/null | tail -20
	ps -eo pid,ppid,user,cgroup:60,args | grep -v ' ps -eo' |
	    grep -E 'llmux|PID'
	echo "---"
}
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups "$@"; }

echo "install test: $kind $pkg, inside systemd $(systemctl --version | head -1 | cut -d' ' -f2) as PID 1"

# ---- install ---------------------------------------------------------
if [ "$kind" = deb ]; then
	# Installed, enabled, not started yet: the test configures first.
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	check "apt-get installs the .deb and its dependencies" \
	    env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends "/root/$pkg"
	rm -f /usr/sbin/policy-rc.d
	check "the units are enabled" systemctl is-enabled \
	    llmux-supervisord.service llmux-proxyd.socket \
	    llmux-proxyd-admin.socket llmux-proxyd.service
else
	# Debian's rpm holds none of the dependencies (apt installed them):
	# --nodeps. The scriptlets run here, under systemd.
	rpm --initdb
	check "rpm installs the .rpm (--nodeps)" rpm -i --nodeps "/root/$pkg"
	check "the presets enabled the units (Debian's: enable)" \
	    systemctl is-enabled llmux-supervisord.service \
	    llmux-proxyd.socket llmux-proxyd-admin.socket
fi

# ---- files, users, directories -----------------------------------------
for f in /usr/sbin/llmux-supervisord /usr/sbin/llmux-proxyd /usr/bin/llmuxctl \
    /usr/bin/llmux-fakevllm /usr/bin/llmux-sim; do
	check "$f is installed and runs" "$f" --help
done
check "/etc/llmux/llmux.yaml is root's, mode 640" \
    is "$(stat -c '%a %U %G' /etc/llmux/llmux.yaml)" "640 root root"
check "the shipped configuration is valid" \
    llmux-supervisord --check-config -c /etc/llmux/llmux.yaml
check "the shipped configuration listens on loopback" \
    grep -q '^  listen_address: 127\.0\.0\.1 ' /etc/llmux/llmux.yaml
check "the shipped proxy socket listens on loopback" \
    grep -qx 'ListenStream=127\.0\.0\.1:3000' "$(systemctl show -P FragmentPath llmux-proxyd.socket)"
check "the admin token was made: root:llmux-admin, mode 640" \
    is "$(stat -c '%a %U %G' /etc/llmux/admin-token)" "640 root llmux-admin"
check "the admin token is 64 random hex digits" \
    grep -Eqx '[0-9a-f]{64}' /etc/llmux/admin-token
for u in llmux-supervisord.service llmux-proxyd.service llmux-proxyd.socket \
    llmux-proxyd-admin.socket; do
	check "unit $u is installed" test -f "$(unit_path $u)"
done
check "systemd-analyze verify passes on the units" systemd-analyze verify \
    "$(unit_path llmux-supervisord.service)" "$(unit_path llmux-proxyd.service)" \
    "$(unit_path llmux-proxyd.socket)" "$(unit_path llmux-proxyd-admin.socket)"
for p in llmux-supervisord.8 llmux-proxyd.8 llmuxctl.1 llmux.yaml.5 \
    llmux-fakevllm.1 llmux-sim.1; do
	check "man ${p%.*}(${p##*.}) renders without a warning" bash -c \
	    "out=\$(MANWIDTH=80 man --warnings ${p##*.} ${p%.*} 2>&1 >/dev/null); \
	    [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"
done
check "bash completion for llmuxctl" test -f /usr/share/bash-completion/completions/llmuxctl
check "user llmux (the proxy)" bash -c \
    'getent passwd llmux | grep -q ":/usr/sbin/nologin$"'
check "user llmux-engine (models), home /var/lib/llmux-engine" bash -c \
    'getent passwd llmux-engine | grep -q ":/var/lib/llmux-engine:"'
check "group llmux-admin (operators)" getent group llmux-admin
check "/var/lib/llmux-engine belongs to llmux-engine, 750" \
    is "$(stat -c '%a %U %G' /var/lib/llmux-engine)" "750 llmux-engine llmux-engine"
check "/run/llmux is 755 root:root" is "$(stat -c '%a %U %G' /run/llmux)" "755 root root"
check "/var/lib/llmux/checkpoints (CRIU images) is 700 root:root" \
    is "$(stat -c '%a %U %G' /var/lib/llmux/checkpoints)" "700 root root"
check "/run/llmux lets llmux-admin use new sockets (default ACL)" bash -c \
    'getfacl -p /run/llmux | grep -qx "default:group:llmux-admin:rw-"'

# ---- configure: llmux-fakevllm for vLLM, free ports --------------------
configure() {
	cat > /etc/llmux/llmux.yaml <<YAML
vllm_command: /usr/bin/llmux-fakevllm
port: $pport
admin_port: $aport
metrics_port: 0
models:
  tiny:
    model_path: tiny
    port: $mport
    extra_args: [--fake-fast]
    aliases: [small]
YAML
	mkdir -p /etc/systemd/system/llmux-proxyd.socket.d \
	    /etc/systemd/system/llmux-proxyd-admin.socket.d
	printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$pport" \
	    > /etc/systemd/system/llmux-proxyd.socket.d/port.conf
	printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$aport" \
	    > /etc/systemd/system/llmux-proxyd-admin.socket.d/port.conf
	systemctl daemon-reload
}
configure

# ---- start as the units do ---------------------------------------------
check "the supervisor starts (Type=notify: READY=1)" \
    systemctl start llmux-supervisord.service
check "the proxy's sockets listen" \
    systemctl start llmux-proxyd.socket llmux-proxyd-admin.socket
check "the supervisor's socket is 660 root:llmux" \
    is "$(stat -c '%a %U %G' /run/llmux/supervisor.sock)" "660 root llmux"
check "the socket's ACL admits llmux-admin" bash -c \
    'getfacl -p /run/llmux/supervisor.sock | grep -q "^group:llmux-admin:rw-"'
check "no model runs before the first request" no_model
check "a request through the proxy starts the model and is served" chat tiny
check "a request by the model's alias is served" chat small
# The journal: structured fields of that first switch (none -> tiny), and
# the supervisor's STATUS= line.
journal_has() {
	journalctl -o json --no-pager -u llmux-supervisord.service |
	    grep -E "$1" | grep -Eq "$2"
}
check "journalctl -o json: the switch's SWITCH_TO, SWITCH_FROM, DURATION_MS" \
    eventually 10 journal_has '"SWITCH_TO" *: *"tiny"' \
    '"SWITCH_FROM" *: *"none".*"DURATION_MS" *: *"[0-9]+"|"DURATION_MS" *: *"[0-9]+".*"SWITCH_FROM" *: *"none"'
check "journalctl -o json: each phase's PHASE" \
    journal_has '"PHASE" *: *"wake"' '"SWITCH_TO" *: *"tiny"'
check "journalctl -o json: MODEL= on the model's lines" \
    journal_has '"MODEL" *: *"tiny"' '"MESSAGE" *: *"model process started'
check "journalctl -o json: PRIORITY and the identifier" \
    journal_has '"SYSLOG_IDENTIFIER" *: *"llmux-supervisord"' '"PRIORITY" *: *"6"'
check "systemctl status shows STATUS=: active: tiny" \
    eventually 10 bash -c 'systemctl status --no-pager llmux-supervisord.service |
    grep -q "Status: \"active: tiny\""'
diagnose "the start and the first requests"
check "the proxy was socket-activated and runs as llmux" \
    is "$(ps -o user= -p "$(systemctl show -P MainPID llmux-proxyd.service)")" llmux
model_pid=$(model_pids | head -1)
check "the model runs as llmux-engine" test -n "$model_pid"
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] ||
    [ -d /sys/fs/cgroup/unified ]; then
	check "the model has its own cgroup (Delegate=yes)" grep -q \
	    '^0::/system.slice/llmux-supervisord.service/model.tiny$' \
	    "/proc/${model_pid:-0}/cgroup"
else
	echo "skip the model's own cgroup: no cgroup v2 in this container"
fi
check "llmuxctl status, as root" llmuxctl status
check "llmuxctl models names the model" bash -c 'llmuxctl --json models | grep -q "\"tiny\""'
useradd -m alice && usermod -aG llmux-admin alice
useradd -m mallory
check "llmuxctl status, as a member of llmux-admin" as alice llmuxctl status
check "llmuxctl is refused to anyone else" bash -c \
    '! setpriv --reuid=mallory --regid=mallory --init-groups llmuxctl status'
check "the control API answers" \
    curl -sf --max-time 10 "http://127.0.0.1:$aport/control/status"
check "the web page is served from /usr/share/llmux/ui" bash -c \
    "curl -sf --max-time 10 http://127.0.0.1:$aport/ui/ | grep -q '<title>llmux</title>'"
if [ "$kind" = deb ]; then
	check "Chart.js is served from /usr/share/javascript (libjs-chart.js)" \
	    curl -sf -o /dev/null --max-time 10 \
	    "http://127.0.0.1:$aport/javascript/chart.js/chart.min.js"
fi
# refused_as USER: POST /control/mode as USER, without the token: 401.
refused_as() {
	local code
	code=$(as "$1" curl -s -o /tmp/control.json -w '%{http_code}' --max-time 10 \
	    -H 'Content-Type: application/json' -d '{"mode": "manual"}' \
	    "http://127.0.0.1:$aport/control/mode")
	is "$code" 401
}
check "a state change without the token is refused (401)" refused_as mallory
check "... with an OpenAI-style error" grep -q '"code": *"admin_token_required"' /tmp/control.json
check "the token is unreadable to anyone else" bash -c \
    '! setpriv --reuid=mallory --regid=mallory --init-groups cat /etc/llmux/admin-token'
check "a member of llmux-admin reads the token and changes state with it" bash -c \
    "tok=\$(setpriv --reuid=alice --regid=alice --init-groups cat /etc/llmux/admin-token) &&
    code=\$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    -H \"Authorization: Bearer \$tok\" -H 'Content-Type: application/json' \
    -d '{\"mode\": \"auto\"}' http://127.0.0.1:$aport/control/mode) && [ \$code = 200 ]"
# log_refused_as USER: GET /control/logs as USER, without the token: 401.
log_refused_as() {
	local code
	code=$(as "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
	    "http://127.0.0.1:$aport/control/logs?model=tiny&lines=5")
	is "$code" 401
}
check "a model's log without the token is refused (401)" log_refused_as mallory
check "... and read with it, by a member of llmux-admin" bash -c \
    "tok=\$(setpriv --reuid=alice --regid=alice --init-groups cat /etc/llmux/admin-token) &&
    code=\$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    -H \"Authorization: Bearer \$tok\" \
    'http://127.0.0.1:$aport/control/logs?model=tiny&lines=5') && [ \$code = 200 ]"

# ---- restarts and reloads keep the model --------------------------------
check "restart the supervisor" systemctl restart llmux-supervisord.service
check "the model process survived the restart (KillMode=process)" \
    alive "$model_pid"
check "re-adopted: the same pid serves" bash -c \
    "llmuxctl --json status | grep -Eq '\"pid\": *${model_pid:-0}[,}]'"
check "served after the supervisor's restart" eventually 30 chat tiny
check "reload the supervisor (SIGHUP)" systemctl reload llmux-supervisord.service
check "restart the proxy" systemctl restart llmux-proxyd.service
check "served after the proxy's restart" chat tiny
check "the supervisor is still active" systemctl is-active llmux-supervisord.service

for u in llmux-proxyd.service llmux-supervisord.service; do
	echo "security: $u $(systemd-analyze security --no-pager "$u" 2>&1 | tail -1)"
done

# ---- upgrade: a reinstall, then a newer version, keep the model ----------
# upgrade DESCRIPTION VERSION COMMAND...: the package manager's upgrade
# restarts both daemons, keeps the proxy's sockets open and the model
# process running, re-adopted by the new supervisor.
upgrade() {
	local desc=$1 want=$2 sup proxy sock have token
	shift 2
	sup=$(mainpid llmux-supervisord.service)
	proxy=$(mainpid llmux-proxyd.service)
	sock=$(systemctl show -P ActiveEnterTimestampMonotonic llmux-proxyd.socket)
	model_pid=$(model_pids | head -1)
	token=$(cat /etc/llmux/admin-token)
	check "$desc" "$@"
	if [ "$kind" = deb ]; then
		have=$(dpkg-query -W -f '${Version}' llmux)
	else
		have=$(rpm -q --qf '%{VERSION}-%{RELEASE}' llmux)
	fi
	check "$desc: version $want installed" is "$have" "$want"
	check "$desc: the supervisor was restarted" bash -c \
	    "systemctl is-active -q llmux-supervisord.service && \
	    [ \"\$(systemctl show -P MainPID llmux-supervisord.service)\" != '$sup' ]"
	check "$desc: the proxy was restarted" bash -c \
	    "[ \"\$(systemctl show -P MainPID llmux-proxyd.service)\" != '$proxy' ]"
	check "$desc: the proxy's socket stayed open" is \
	    "$(systemctl show -P ActiveEnterTimestampMonotonic llmux-proxyd.socket)" "$sock"
	check "$desc: the model process kept running" alive "$model_pid"
	check "$desc: re-adopted: the same pid serves" eventually 30 bash -c \
	    "llmuxctl --json status | grep -Eq '\"pid\": *${model_pid:-0}[,}]'"
	check "$desc: served" eventually 30 chat tiny
	check "$desc: served by the alias" chat small
	check "$desc: the configuration was kept" \
	    grep -q "port: $mport" /etc/llmux/llmux.yaml
	check "$desc: the admin token was kept" is "$(cat /etc/llmux/admin-token)" "$token"
	diagnose "$desc"
}
if [ "$kind" = deb ]; then
	debver=$(dpkg-query -W -f '${Version}' llmux)
	newver=$(dpkg-deb -f "/root/$newer" Version)
	upgrade "apt-get install --reinstall (the same version)" "$debver" \
	    env DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall \
	    --no-install-recommends "/root/$pkg"
	upgrade "apt-get install of a newer version" "$newver" \
	    env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends "/root/$newer"
else
	rpmver=$(rpm -q --qf '%{VERSION}-%{RELEASE}' llmux)
	newver=$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "/root/$newer")
	upgrade "rpm --reinstall (the same version)" "$rpmver" \
	    rpm --reinstall --nodeps "/root/$pkg"
	upgrade "rpm -U of a newer version" "$newver" \
	    rpm -U --nodeps "/root/$newer"
fi

# ---- remove --------------------------------------------------------------
# Twice: with the supervisor running and the model pinned (the supervisor
# stops it), then with the supervisor stopped by hand and the model left
# running (KillMode=process), which the removal kills.
as llmux-engine touch /var/lib/llmux-engine/model-cache
check "llmuxctl pin tiny" llmuxctl pin tiny
check "the pinned model runs" alive "$(model_pids | head -1)"
if [ "$kind" = deb ]; then
	check "apt-get remove, the supervisor running, the model pinned" \
	    env DEBIAN_FRONTEND=noninteractive apt-get remove -y llmux
else
	check "rpm -e, the supervisor running, the model pinned" \
	    rpm -e --nodeps llmux
fi
cp /tmp/out /tmp/removal.out
check "the supervisor stopped the model (stop-models said so)" \
    grep -q '^llmux: Model tiny stopped' /tmp/removal.out
check "the pinned model was stopped" no_model
check "the supervisor was stopped" no_supervisor
check "no process is left in the supervisor's unit" is \
    "$(systemctl show -P ControlGroup llmux-supervisord.service)" ""
check "the units are gone" bash -c '! systemctl cat llmux-supervisord.service'
check "the model caches were kept" test -e /var/lib/llmux-engine/model-cache
diagnose "the removal"

if [ "$kind" = deb ]; then
	check "apt-get installs the .deb again" env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends "/root/$pkg"
else
	check "rpm installs the .rpm again" rpm -i --nodeps "/root/$pkg"
fi
configure
check "the supervisor starts again" systemctl restart llmux-supervisord.service
check "the proxy's sockets listen again" \
    systemctl start llmux-proxyd.socket llmux-proxyd-admin.socket
check "a request starts the model again" chat tiny
model_pid=$(model_pids | head -1)
check "stop the supervisor by hand" systemctl stop llmux-supervisord.service
check "the model was left running (KillMode=process)" alive "$model_pid"
if [ "$kind" = deb ]; then
	check "apt-get purge, the supervisor stopped, the model running" \
	    env DEBIAN_FRONTEND=noninteractive apt-get purge -y llmux
	cp /tmp/out /tmp/removal.out
	check "purge removed the state journal" test ! -e /var/lib/llmux
	check "purge removed the model logs" test ! -e /var/log/llmux
	check "purge removed /etc/llmux" test ! -e /etc/llmux
else
	check "rpm -e, the supervisor stopped, the model running" \
	    rpm -e --nodeps llmux
	cp /tmp/out /tmp/removal.out
fi
check "stop-models signalled what was left in the unit" \
    grep -q '^llmux: stopping the model processes left running' /tmp/removal.out
check "the model left running was stopped" no_model
check "no supervisor process is left" no_supervisor
check "no process is left in the supervisor's unit" is \
    "$(systemctl show -P ControlGroup llmux-supervisord.service)" ""
check "the units are gone" bash -c '! systemctl cat llmux-supervisord.service'
check "the model caches were kept" test -e /var/lib/llmux-engine/model-cache
diagnose "the removal"

if [ $fails -eq 0 ]; then
	echo "RESULT PASS"
else
	echo "RESULT FAIL ($fails)"
fi
