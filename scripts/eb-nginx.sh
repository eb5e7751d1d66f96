#!/usr/bin/env bash
# Lays out nginx as Elastic Beanstalk does on one platform, with this project's .platform/nginx
# files placed where the platform places them, so that the real nginx can be started with it
# (tests/it/nginx.rs and .ci/deploy-checks do). The platforms' own files are in
# tests/data/eb-nginx/ (see its README).
#
#   scripts/eb-nginx.sh LAYOUT DIR LISTEN_PORT UPSTREAM [BRIDGE]
#
# LAYOUT    procfile | docker
# DIR       an empty directory to write into; nginx then runs as
#           nginx -p DIR -c DIR/nginx.conf -g 'daemon off; master_process off;'
# UPSTREAM  host:port of the service (127.0.0.1:5000 on a Procfile instance)
# BRIDGE    docker only, optional: a local address nginx connects to the service from, as the
#           Docker bridge's gateway (172.17.0.1) is on an instance
#
# As on an instance: .platform/nginx/conf.d/* is copied over conf.d/ (a file of the same name
# replaces the platform's), and .platform/nginx/nginx.conf, if there were one, would replace
# nginx.conf. Prints the path of nginx.conf.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '7,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
(($# == 4 || $# == 5)) || usage
layout=$1 dir=$2 listen=$3 upstream=$4 bridge=${5:-}
case $layout in procfile | docker) ;; *) usage ;; esac
[[ -d $dir ]] || { echo "eb-nginx: $dir is not a directory" >&2; exit 2; }
[[ $listen =~ ^[0-9]+$ ]] || usage
[[ $upstream =~ ^[^[:space:]|]+:[0-9]+$ ]] || usage
if [[ -n $bridge && $layout != docker ]]; then
  echo "eb-nginx: BRIDGE is for the docker layout only" >&2
  exit 2
fi

cp -R "tests/data/eb-nginx/$layout/." "$dir/"
rm -f "$dir/conf.d/elasticbeanstalk/.keep"
cp -R .platform/nginx/. "$dir/"

# What an unprivileged process in a temporary directory needs instead of the instance's paths.
harness="client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;"
if [[ -n $bridge ]]; then
  harness+=" proxy_bind $bridge;"
fi
# nginx.conf's first lines: the pid and error log, which the platform keeps under /var.
{
  echo "pid $dir/nginx.pid;"
  echo "error_log $dir/error.log warn;"
  cat "$dir/nginx.conf"
} >"$dir/nginx.conf.new"
mv "$dir/nginx.conf.new" "$dir/nginx.conf"

while IFS= read -r -d '' f; do
  sed -i -e "s|@PREFIX@|$dir|g" -e "s|@LISTEN@|$listen|g" -e "s|@UPSTREAM@|$upstream|g" \
    -e "s|@HARNESS@|$harness|g" "$f"
done < <(find "$dir" -name '*.conf' -print0)
echo "$dir/nginx.conf"
