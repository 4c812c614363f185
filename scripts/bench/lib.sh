# Shell functions shared by scripts/bench.sh, scripts/bench-targets.sh and
# scripts/build-pgo.sh (sourced, not run).

# A free TCP port on 127.0.0.1, chosen by the OS.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# signin_lua ORIGIN DIR PREFIX: writes DIR/signin.lua, a wrk script that
# POSTs a new address (PREFIX1@example.com, PREFIX2@..., one per request)
# to ORIGIN's sign-in form, with the CSRF cookie and token of one fresh
# visit to the sign-in page (kept in DIR/jar).
signin_lua() {
    local origin=$1 dir=$2 prefix=$3 page csrf cookie
    page=$(curl -sS -c "$dir/jar" "$origin/.portcullis/login")
    csrf=$(grep -o 'name="csrf" value="[^"]*"' <<<"$page" | sed 's/.*value="//; s/"$//')
    cookie=$(awk '/portcullis-csrf/ {print $6"="$7}' "$dir/jar")
    cat >"$dir/signin.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Origin"] = "$origin"
wrk.headers["Cookie"] = "$cookie"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/.portcullis/login", nil, "email=$prefix" .. n .. "%40example.com&rd=%2F&csrf=$csrf")
end
LUA
}

# cpu_ticks PID: the CPU time (user and system, clock ticks) the process PID
# and its children (nginx's workers) have used.
cpu_ticks() {
    local pid total=0 t
    for pid in "$1" $(pgrep -P "$1" || true); do
        # Fields 14 and 15 (utime, stime) count from the closing paren of
        # the command name, as fields 12 and 13 of what follows it.
        t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
