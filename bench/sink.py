"""A Twilio-compatible sink that is not the bottleneck: nginx answering every create-message
request with a fixed 201 Message JSON and a per-request ``SM`` sid (``$request_id``)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONFIG = r"""
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location ~ ^/2010-04-01/Accounts/(?<ac>AC[0-9a-f]+)/Messages\.json$ {{
            if ($request_method = GET) {{
                return 200 '{{"messages": [], "next_page_uri": null, "page": 0, "page_size": 50}}';
            }}
            return 201 '{{"account_sid": "$ac", "api_version": "2010-04-01", "body": "bench", "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "date_sent": null, "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000", "direction": "outbound-api", "error_code": null, "error_message": null, "from": "+15005550006", "messaging_service_sid": null, "num_media": "0", "num_segments": "1", "price": null, "price_unit": null, "sid": "SM$request_id", "status": "queued", "subresource_uris": {{"media": "/2010-04-01/Accounts/$ac/Messages/SM$request_id/Media.json"}}, "to": "+14155550100", "uri": "/2010-04-01/Accounts/$ac/Messages/SM$request_id.json"}}';
        }}
        location ~ ^/2010-04-01/Accounts/(?<ac2>AC[0-9a-f]+)\.json$ {{
            return 200 '{{"sid": "$ac2", "friendly_name": "bench", "status": "active", "type": "Full"}}';
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxSink:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="textrelay-sink-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> NginxSink:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.dir / "nginx.conf"
        conf.write_text(CONFIG.format(dir=self.dir, port=self.port))
        self.proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(self.dir), "-e", str(self.dir / "error.log")])
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"nginx did not start: {(self.dir / 'error.log').read_text()}") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    with NginxSink() as sink:
        print(sink.url)
        import urllib.request

        req = urllib.request.Request(f"{sink.url}/2010-04-01/Accounts/AC{'0'*32}/Messages.json", data=b"To=%2B1",
                                     method="POST")
        print(urllib.request.urlopen(req).read()[:200])
