#!/usr/bin/env python3
"""Verify a terroir attestation with an implementation independent of terroir's own.

Usage: verify_dsse.py ATTESTATION KEY.pub [KEY]

Decodes the DSSE envelope, rebuilds the pre-authentication encoding
("DSSEv1 <len(type)> <type> <len(payload)> <payload>"), verifies the Ed25519 signature with the
SubjectPublicKeyInfo PEM public key (Python's cryptography package), and prints the statement's
type, predicate type and subject count. With KEY, also checks that the PKCS#8 PEM private key
loads and matches the public key. Exit 0 when valid, 1 otherwise.
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def main() -> int:
    envelope = json.load(open(sys.argv[1]))
    public = serialization.load_pem_public_key(open(sys.argv[2], "rb").read())
    if not isinstance(public, Ed25519PublicKey):
        print("not an Ed25519 public key", file=sys.stderr)
        return 1
    if len(sys.argv) > 3:
        private = serialization.load_pem_private_key(open(sys.argv[3], "rb").read(), password=None)
        raw = serialization.Encoding.Raw
        if private.public_key().public_bytes(raw, serialization.PublicFormat.Raw) != public.public_bytes(raw, serialization.PublicFormat.Raw):
            print("the private key does not match the public key", file=sys.stderr)
            return 1
    payload = base64.b64decode(envelope["payload"], validate=True)
    message = pae(envelope["payloadType"], payload)
    for s in envelope["signatures"]:
        try:
            public.verify(base64.b64decode(s["sig"], validate=True), message)
        except InvalidSignature:
            continue
        statement = json.loads(payload)
        print(json.dumps({"valid": True, "type": statement["_type"], "predicateType": statement["predicateType"],
                          "subjects": len(statement["subject"]), "payloadType": envelope["payloadType"]}))
        return 0
    print("no signature verifies", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
