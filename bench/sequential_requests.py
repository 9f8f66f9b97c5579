"""The hand-written script: a sequential `requests` loop posting pre-built payloads.

    python bench/sequential_requests.py PAYLOADS.jsonl URL DEPARTMENT     (MK_USERNAME/MK_PASSWORD)
"""

from __future__ import annotations

import os
import sys

import requests


def main(payloads: str, url: str, department: str) -> None:
    endpoint = f"{url}/customer/v2/department/{department}/customer"
    auth = (os.environ["MK_USERNAME"], os.environ["MK_PASSWORD"])
    ok = total = 0
    with requests.Session() as session, open(payloads, encoding="utf-8") as stream:
        for line in stream:
            total += 1
            response = session.post(endpoint, data=line.rstrip("\n").encode(), auth=auth,
                                    headers={"Content-Type": "application/json"}, timeout=60)
            ok += response.status_code == 200
    print(f"{ok} of {total} saved", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
