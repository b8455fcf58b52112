# Sourced by the benchmarks: nginx with a private prefix under $WORK, its pid added to PIDS.
# Needs NGINX (the binary), WORK (a scratch directory) and the array PIDS.

# nginx_start NAME CONF_BODY [CPU-PREFIX…] → starts "nginx -g 'daemon off;'" with a private prefix;
# sets LAST_PID to the master pid
nginx_start() {
	local name="$1" body="$2" dir="$WORK/$1"
	mkdir -p "$dir/logs" "$dir/tmp"
	chmod 777 "$dir/tmp"
	cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 30000; }
http {
	access_log off;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	keepalive_requests 10000000;
	keepalive_timeout 300s;
$body
}
EOF
	"${@:3}" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/logs/stdout.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

nginx_worker() { pgrep -P "$1" | head -1; }
