package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/relaystation/relay/internal/bench"
)

// nginxConf is nginx as the reference proxy: one process (no master, so
// its CPU is one PID's), HTTP/1.1 keep-alive to the upstream, the key
// swapped as the bare proxy swaps it, and no buffering either way, so a
// stream's events pass as they come.
const nginxConf = `worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
master_process off;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 32768; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream fake {
    server %[2]s;
    keepalive 256;
  }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header x-api-key %[4]s;
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`

// startNginx starts nginx in front of the fake upstream, when the
// machine has it (scripts/bench.sh installs Debian's nginx-light).
func (h *harness) startNginx(ctx context.Context, pinned bool) (bench.System, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return bench.System{}, fmt.Errorf("nginx is not installed (apt-get install nginx-light)")
	}
	dir := filepath.Join(h.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return bench.System{}, err
	}
	addr, err := freePort()
	if err != nil {
		return bench.System{}, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	upstreamAddr := h.fake.URL()[len("http://"):]
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, upstreamAddr, addr, upstreamKey), 0o644); err != nil {
		return bench.System{}, err
	}
	p, err := h.start("nginx", pinned, baseEnv(), bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return bench.System{}, err
	}
	url := "http://" + addr
	if err := h.waitReady(ctx, p, url+"/v1/models", 10*time.Second, false); err != nil {
		return bench.System{}, err
	}
	h.logf("nginx: pid %d at %s", p.cmd.Process.Pid, url)
	return bench.System{Name: "nginx", URL: url, Key: "sk-proxy-bench-client", PID: p.cmd.Process.Pid}, nil
}
