#!/usr/bin/python3
"""Posts a JSON body and reads the event stream that answers it as it arrives (Python standard
library only; the proxy and CA come from the environment ward sets inside the sandbox).

  sse_timing.py URL BODY [NAME:VALUE ...]

Prints one JSON object: {"status", "content_type", "times": arrival of each "data:" line in ms
after the request was sent, "text": the deltas' text joined (OpenAI chat choices[0].delta.content,
Anthropic delta.text), "usage": the usage objects seen (top-level or message.usage) merged, later
fields winning}; {"status", "body"} for an error status; {"error": ...} when the request failed.
"""

import json
import sys
import time
import urllib.error
import urllib.request


def main():
    url, body = sys.argv[1], sys.argv[2].encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for header in sys.argv[3:]:
        name, _, value = header.partition(":")
        request.add_header(name.strip(), value.strip())
    start = time.monotonic()
    try:
        response = urllib.request.urlopen(request, timeout=20)
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code, "body": e.read().decode(errors="replace")}))
        return
    except OSError as e:
        print(json.dumps({"error": str(e)}))
        return
    out = {"status": response.status, "content_type": response.headers.get("Content-Type"),
           "times": [], "text": "", "usage": None}
    while True:
        line = response.readline()
        if not line:
            break
        if not line.startswith(b"data:"):
            continue
        out["times"].append(round((time.monotonic() - start) * 1000))
        try:
            data = json.loads(line[5:])
        except ValueError:
            continue  # "[DONE]"
        choices = data.get("choices") or [{}]
        out["text"] += (choices[0].get("delta") or {}).get("content") or ""
        out["text"] += (data.get("delta") or {}).get("text") or ""
        usage = data.get("usage") or (data.get("message") or {}).get("usage")
        if usage:  # Anthropic: input in message_start, the final output in message_delta
            out["usage"] = dict(out["usage"] or {}, **usage)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
