"""Reads RecordBatch v2 bytes (hex, one batch per line on stdin) with kafka-python's
DefaultRecordBatch, a second independent implementation, and prints each as JSON:
{"valid": bool, "crc_ok": bool, "producer_id", "producer_epoch", "base_sequence",
 "transactional", "records": [{"offset","timestamp","key","value","headers"}]}.
"""

import json
import sys

from kafka.record.default_records import DefaultRecordBatch


def hexor(b):
    return None if b is None else bytes(b).hex()


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        b = DefaultRecordBatch(bytearray.fromhex(line))
        out = {
            "valid": True,
            "crc_ok": b.validate_crc(),
            "producer_id": b.producer_id,
            "producer_epoch": b.producer_epoch,
            "base_sequence": b.base_sequence,
            "transactional": b.is_transactional,
            "records": [
                {
                    "offset": r.offset,
                    "timestamp": r.timestamp,
                    "key": hexor(r.key),
                    "value": hexor(r.value),
                    "headers": [[k, hexor(v)] for k, v in r.headers],
                }
                for r in b
            ],
        }
    except Exception as e:  # noqa: BLE001 - reported as invalid
        out = {"valid": False, "error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(out) + "\n")
