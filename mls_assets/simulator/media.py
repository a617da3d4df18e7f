"""The photos' bytes, served as an MLS's media host serves them: `GET /media/<path>` for each
photo URL of the market (the path of `https://cdn.sparkplatform.test/<path>`).

Each image is a deterministic JPEG (the same URL, the same bytes) of a realistic size for
its URL's size suffix (`thumb` 200x150 ... `large` 2048x1536, one photo in seven portrait),
with noise and shapes so it weighs what a photo weighs (~450 kB at 2048x1536). With
`fault_rate` > 0, that share of the photos misbehave, each always the same way
(chosen from the photo's id):

- `missing`: 404;          - `slow`: answers after `slow_seconds`;
- `truncated`: half the bytes; - `corrupt`: bytes that are not an image;
- `wrong_type`: an HTML page with `Content-Type: text/html`;
- `huge`: a PNG that declares 12,000 x 12,000 pixels (a decompression bomb);
- `token_only`: 401 unless the request carries one of the server's tokens (as some RESO
  media hosts require).

Every host also has a request budget (`rate_per_second`, a CDN's rate limit): past it, 429
with `Retry-After: 1`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

PREFIX = "/media"
SIZES = {
    "thumb": (200, 150),
    "300": (300, 225),
    "640": (640, 480),
    "800": (800, 600),
    "1024": (1024, 768),
    "1280": (1280, 960),
    "1600": (1600, 1200),
    "2048": (2048, 1536),
    "large": (2048, 1536),
}
FAULTS = ("missing", "slow", "truncated", "corrupt", "wrong_type", "huge", "token_only")


@dataclass
class MediaHost:
    fault_rate: float = 0.0
    slow_seconds: float = 2.0
    rate_per_second: float = 200.0
    max_side: int | None = None  # serve no photo wider or taller than this (a quick demo)
    cache_size: int = 256  # photos kept rendered (a benchmark keeps all: its server CPU is not ours)
    clock: Callable[[], float] = time.monotonic  # the rate limit's clock (a test holds it still)
    served: int = 0
    limited: int = 0
    _cache: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    _window: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_of(self, path: str) -> str | None:
        """The fault a photo always has (None for most)."""
        digest = hashlib.sha256(path.rsplit("-", 1)[0].encode()).digest()  # every size of a photo alike
        if int.from_bytes(digest[:4], "big") / 2**32 >= self.fault_rate:
            return None
        return FAULTS[digest[4] % len(FAULTS)]

    def over_budget(self) -> bool:
        """One more request than the host allows in the last second."""
        now = self.clock()
        with self._lock:
            self._window = [t for t in self._window if now - t < 1.0]
            if len(self._window) >= self.rate_per_second:
                self.limited += 1
                return True
            self._window.append(now)
            self.served += 1
            return False

    def image(self, path: str) -> bytes:
        """The JPEG of a photo path (`.../<n>-<size>.jpg`), the same bytes every time."""
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None:
                self._cache.move_to_end(path)
                return cached
        data = render_photo(path, self.max_side)
        with self._lock:
            self._cache[path] = data
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return data


def size_of(path: str) -> tuple[int, int] | None:
    name = path.rsplit("/", 1)[-1]
    if not name.endswith(".jpg") or "-" not in name:
        return None
    return SIZES.get(name[:-4].rsplit("-", 1)[1])


def render_photo(path: str, max_side: int | None = None) -> bytes:
    width, height = size_of(path) or SIZES["640"]
    if max_side and max(width, height) > max_side:
        width, height = max_side, max_side * height // width
    seed = int.from_bytes(hashlib.sha256(path.rsplit("-", 1)[0].encode()).digest()[:4], "big")
    if seed % 7 == 3:
        width, height = height, width  # portrait
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    tint = Image.new("RGB", (width, height), (seed % 200, (seed >> 8) % 200, (seed >> 16) % 200))
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    photo = Image.blend(Image.blend(base, tint, 0.5), noise, 0.1)  # ~450 kB at 2048x1536, as MLS photos weigh
    draw = ImageDraw.Draw(photo)
    for i in range(12):  # shapes with edges, as a room has
        x, y = (seed * (i + 3)) % width, (seed * (i + 7)) % height
        colour = ((seed >> i) % 255, (seed * i) % 255, (seed + 90 * i) % 255)
        draw.rectangle((x, y, x + width // 6, y + height // 8), fill=colour)
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=88)
    return out.getvalue()


@functools.cache
def bomb() -> bytes:
    """A small PNG that declares 144 million pixels."""
    out = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(out, "PNG")
    return out.getvalue()


def answer(host: MediaHost, path: str, token_ok: bool, stopping: threading.Event) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of `GET /media/<path>`."""
    if host.over_budget():
        return 429, b"Too Many Requests", {"Retry-After": "1", "Content-Type": "text/plain"}
    if size_of(path) is None:
        return 404, b"Not Found", {"Content-Type": "text/plain"}
    fault = host.fault_of(path)
    if fault == "missing":
        return 404, b"<html>Not Found</html>", {"Content-Type": "text/html"}
    if fault == "token_only" and not token_ok:
        return 401, b"Unauthorized", {"Content-Type": "text/plain", "WWW-Authenticate": "Bearer"}
    if fault == "wrong_type":
        return 200, b"<html><body>Image not available</body></html>", {"Content-Type": "text/html"}
    if fault == "huge":
        return 200, bomb(), {"Content-Type": "image/png"}
    if fault == "slow":
        stopping.wait(host.slow_seconds)
    data = host.image(path)
    if fault == "truncated":
        data = data[: len(data) // 2]
    elif fault == "corrupt":
        data = data[:3] + hashlib.sha256(path.encode()).digest() * 64
    return 200, data, {"Content-Type": "image/jpeg", "Cache-Control": "public, max-age=86400"}
