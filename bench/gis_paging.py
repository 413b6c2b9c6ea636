"""Page 10k/50k/100k ArcGIS features from a loopback server through ArcGISSource + normalize_geometry.

The server (the sample ArcGIS handler over synthetic bus-stop-like points in CCS2005, EPSG:7801,
maxRecordCount 2000) runs in a child process so its memory and CPU are not counted. Each size is run
twice: once for records/s, once under tracemalloc for the peak Python allocation of the client,
which must stay flat as the layer grows (pages are streamed, records never held).

    python -m bench gis_paging            # prints the table and appends it to bench/README.md
"""

from __future__ import annotations

import asyncio
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from adapter.geometry import from_wgs84, normalize_geometry

SIZES = (10_000, 50_000, 100_000)
PAGE = 2000
README = Path(__file__).resolve().parent / "README.md"


def _features(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7801)
    features = []
    for oid in range(1, n + 1):
        x, y = from_wgs84(27.38 + rng.random() * 0.16, 42.44 + rng.random() * 0.13, 7801)
        features.append({"attributes": {"OBJECTID": oid, "NAME": f"Спирка {oid}", "CODE": str(1000 + oid),
                                        "UPDATED": 1_717_200_000_000 + oid * 1000},
                         "geometry": {"x": round(x, 3), "y": round(y, 3)}})
    return features


def _layer() -> dict[str, Any]:
    return {"name": "bench", "type": "Feature Layer", "geometryType": "esriGeometryPoint",
            "objectIdField": "OBJECTID", "maxRecordCount": PAGE,
            "sourceSpatialReference": {"wkid": 7801, "latestWkid": 7801},
            "advancedQueryCapabilities": {"supportsPagination": True},
            "fields": [{"name": "OBJECTID", "type": "esriFieldTypeOID"},
                       {"name": "NAME", "type": "esriFieldTypeString"},
                       {"name": "CODE", "type": "esriFieldTypeString"},
                       {"name": "UPDATED", "type": "esriFieldTypeDate"}]}


def serve() -> None:
    """Child process: serve one layer per size, print the base URL, run until stdin closes."""
    from adapter.samples.gis.server import ArcGISLayer, SampleServer
    features = _features(max(SIZES))
    routes: dict[str, Any] = {}
    for n in SIZES:
        routes.update(ArcGISLayer(_layer(), features[:n]).routes(f"/bench/FeatureServer/{n}"))
    server = SampleServer(routes).start()
    print(server.base_url, flush=True)
    sys.stdin.read()
    server.stop()


async def _run(url: str) -> int:
    import httpx

    from adapter.sources.arcgis import ArcGISSource
    async with httpx.AsyncClient(timeout=60) as client:
        count = 0
        async for record in ArcGISSource("bench", url, client=client).fetch():
            normalize_geometry(record.payload["geometry"], record.payload["crs"])
            count += 1
        return count


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(base: str) -> list[tuple[int, float, float, float]]:
    """(features, records/s, tracemalloc peak MiB, peak RSS MiB) per size."""
    rows = []
    asyncio.run(_run(f"{base}/bench/FeatureServer/{SIZES[0]}"))  # warm-up: imports, PROJ database, connections
    for n in SIZES:
        url = f"{base}/bench/FeatureServer/{n}"
        start = time.perf_counter()
        got = asyncio.run(_run(url))
        elapsed = time.perf_counter() - start
        assert got == n, (got, n)
        tracemalloc.start()
        asyncio.run(_run(url))
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append((n, n / elapsed, peak, _rss_mb()))
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        serve()
        return 0
    child = subprocess.Popen([sys.executable, "-m", "bench", "gis_paging", "--serve"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        rows = measure(child.stdout.readline().strip())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    table = ["| features | records/s | client peak (tracemalloc) | process peak RSS |",
             "|---:|---:|---:|---:|"]
    table += [f"| {n:,} | {rate:,.0f} | {peak:.1f} MiB | {rss:.0f} MiB |" for n, rate, peak, rss in rows]
    text = "\n".join(table)
    print(text)
    _append(text)
    return 0


def _append(table: str) -> None:
    section = (
        "## GIS paging\n\n"
        "`python -m bench gis_paging`: an ArcGIS-like loopback server (child process) pages point "
        f"features in CCS2005 (EPSG:7801), {PAGE} per page (`resultOffset`/`resultRecordCount` until "
        "`exceededTransferLimit` is false), through `ArcGISSource` (epoch-ms dates to UTC datetimes) and "
        "`normalize_geometry` (EPSG:7801 -> WGS84, Bulgaria check). Peak memory is the client's "
        "tracemalloc peak during one full run; it stays flat because records are streamed page by "
        f"page. Measured {time.strftime('%Y-%m-%d')} on 2 cores.\n\n{table}\n")
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    if "## GIS paging" in text:
        head, _, rest = text.partition("## GIS paging")
        tail = rest.split("\n## ", 1)
        text = head + section + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
