#!/usr/bin/env bash
# Makes error.log: a private nginx (Debian's nginx-light) and php-fpm in a scratch directory answer
# a few requests; nginx writes its error log there. Usage: [PORT=N] make.sh SCRATCH_DIR (as root;
# the directory and its parents must be traversable by nobody and www-data)
set -euo pipefail
d=$(realpath "$1"); mkdir -p "$d"/{logs,html/dir,tmp}; port=${PORT:-18089}
cat > "$d/html/err.php" <<'PHP'
<?php
echo $undefined_variable;
trigger_error("custom warning from the test page", E_USER_WARNING);
undefined_function_call();
PHP
echo hi > "$d/html/index.html"
cat > "$d/php-fpm.conf" <<CONF
[global]
pid = $d/php-fpm.pid
error_log = $d/logs/php-fpm.log
daemonize = no
[www]
user = www-data
group = www-data
listen = $d/php.sock
listen.mode = 0666
pm = static
pm.max_children = 1
php_admin_flag[log_errors] = on
php_admin_value[display_errors] = off
CONF
cat > "$d/nginx.conf" <<CONF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log notice;
events { worker_connections 64; }
http {
  access_log $d/logs/access.log;
  client_body_temp_path $d/tmp/body;
  fastcgi_temp_path $d/tmp/fcgi;
  proxy_temp_path $d/tmp/proxy;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    server_name _;
    root $d/html;
    client_max_body_size 64k;
    location ~ \.php\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass unix:$d/php.sock;
    }
    location /secret/ { deny all; }
    location /gone/ { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$d/nothing.sock; }
    location /up/ { proxy_pass http://127.0.0.1:1; }
  }
}
CONF
chmod 755 "$d" "$d/html"
fpm_bin=$(ls /usr/sbin/php-fpm* | head -n 1)
"$fpm_bin" -y "$d/php-fpm.conf" -F >"$d/logs/fpm.out" 2>&1 & fpm=$!
nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' 2>>"$d/logs/error.log" & ngx=$!
sleep 1
get() { curl -s -o /dev/null -H "Host: www.example.com" -e "http://ref.example/" "$@"; }
base=http://127.0.0.1:$port
get $base/ ; get $base/x.php ; get $base/missing.html ; get "$base/wp-login.php?action=register"
get $base/err.php ; get $base/secret/a ; get "$base/static/../../etc/passwd" ; get $base/up/x
get "$base/cgi-bin/test.cgi?cmd=id" ; get $base/gone/a ; get $base/dir/
head -c 30000 /dev/zero | tr '\0' a | curl -s -o /dev/null --data-binary @- $base/x.php
head -c 100000 /dev/zero | tr '\0' a | curl -s -o /dev/null --data-binary @- $base/upload.php
curl -s -o /dev/null "$base/shell.php?cmd=cat%20/etc/passwd&x=1"
# the signal process writes to the error log it finds first (Debian: /var/log/nginx/error.log)
nginx -p "$d" -c "$d/nginx.conf" -s reload 2>>"$d/logs/error.log"
sleep 1
printf 'GET /q".php?a=b HTTP/1.0\r\n\r\n' | python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",'$port')); s.sendall(sys.stdin.buffer.read()); s.recv(4096)'
nginx -p "$d" -c "$d/nginx.conf" -s quit 2>>"$d/logs/error.log"
wait $ngx; kill $fpm; wait $fpm || true
