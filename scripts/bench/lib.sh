# shellcheck shell=bash
# Shell functions shared by scripts/bench.sh, scripts/bench-targets.sh,
# scripts/build-pgo.sh and scripts/callgrind.sh (sourced, not run). The
# caller defines die MESSAGE.

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

# form_field PAGE NAME: the hidden field NAME of the form in the file PAGE.
form_field() {
    sed -n "s/.*name=\"$2\" value=\"\([^\"]*\)\".*/\1/p" "$1" | head -n 1
}

# mail_link DIR ORIGIN: the sign-in link of ORIGIN in a mail in DIR.
mail_link() {
    python3 - "$1" "$2" <<'PY'
import email, email.policy, pathlib, re, sys
dir, origin = sys.argv[1], sys.argv[2]
pattern = re.compile(re.escape(origin) + r"/\.portcullis/verify\?token=[A-Za-z0-9_-]{43}")
for f in sorted(pathlib.Path(dir).iterdir()):
    msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            m = pattern.search(part.get_content())
            if m:
                print(m.group(0))
                sys.exit(0)
PY
}

# curl_sign_in ORIGIN DIR EMAIL WAIT: signs EMAIL in at ORIGIN as a browser
# does (the sign-in page, its form, the link from the mail the gateway
# writes to DIR/mail within WAIT seconds, the confirm button), and writes
# the session as a `Cookie:` header to DIR/cookie.header (mode 600, so it
# is on no command line).
curl_sign_in() {
    local origin=$1 dir=$2 email=$3 wait=$4
    local jar="$dir/cookies.txt" page="$dir/page.html" status csrf token link="" deadline session
    status=$(curl -sS -o "$page" -w '%{http_code}' -c "$jar" -b "$jar" "$origin/.portcullis/login?rd=/")
    [[ $status == 200 ]] || die "GET /.portcullis/login answered $status"
    csrf=$(form_field "$page" csrf)
    [[ -n $csrf ]] || die "the login page has no csrf field"

    status=$(curl -sS -o "$page" -w '%{http_code}' -c "$jar" -b "$jar" -H "Origin: $origin" \
        --data-urlencode "email=$email" --data-urlencode "rd=/" --data-urlencode "csrf=$csrf" \
        "$origin/.portcullis/login")
    [[ $status == 200 ]] || die "POST /.portcullis/login answered $status"

    # The mail is written by a background queue; a file may still be being
    # written: retry until the link parses.
    deadline=$((SECONDS + wait))
    while [[ -z $link ]]; do
        if compgen -G "$dir/mail/*" >/dev/null; then
            link=$(mail_link "$dir/mail" "$origin") || link=""
        fi
        if [[ -z $link ]]; then
            ((SECONDS < deadline)) || die "no mail with a sign-in link in $dir/mail after ${wait}s"
            sleep 0.05
        fi
    done

    status=$(curl -sS -o "$page" -w '%{http_code}' -c "$jar" -b "$jar" "$link")
    [[ $status == 200 ]] || die "GET of the sign-in link answered $status"
    token=$(form_field "$page" token)
    csrf=$(form_field "$page" csrf)
    [[ -n $token && -n $csrf ]] || die "the verify page has no confirm form (not the same browser?)"

    status=$(curl -sS -o /dev/null -D "$dir/verify.headers" -w '%{http_code}' -c "$jar" -b "$jar" \
        -H "Origin: $origin" --data-urlencode "token=$token" --data-urlencode "csrf=$csrf" \
        "$origin/.portcullis/verify")
    [[ $status == 303 ]] || die "POST /.portcullis/verify answered $status, not 303"
    session=$(sed -n 's/^[Ss]et-[Cc]ookie: portcullis=\([^;[:space:]]*\).*/\1/p' "$dir/verify.headers" | head -n 1)
    [[ $session == v1.* ]] || die "POST /.portcullis/verify set no portcullis=v1... session cookie"
    printf 'Cookie: portcullis=%s\n' "$session" >"$dir/cookie.header"
    chmod 600 "$dir/cookie.header"
}
