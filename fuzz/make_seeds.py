#!/usr/bin/env python3
"""Writes the seed corpus fuzz/seeds/<target>/ (committed; run again after changing a layout).

Files it does not name (regression inputs added by hand) are left alone; delete a renamed seed by
hand.

The structured targets put their fixed-size fields first and their text last, where it takes the
rest of the input (`arbitrary`'s take-rest rule), so a seed is a binary header followed by text.
`arbitrary` 1.x reads integers little-endian, a bool as the low bit of one byte, and an enum
variant k of n from a little-endian u32 t as (t * n) >> 32.
"""

import pathlib
import struct
import sys

SEEDS = pathlib.Path(__file__).resolve().parent / "seeds"
US = "\x1f"  # splits the text of base32_secret and password into fields


def variant(k: int, n: int) -> bytes:
    t = -(-(k << 32) // n)  # ceil(k * 2^32 / n)
    assert (t * n) >> 32 == k
    return struct.pack("<I", t)


def otp(alg: int, t: int, key: bytes, code: str, *, digits=6, period=30, window=1, last_step=None,
        counter=0, hotp_digits=6) -> bytes:
    assert len(key) <= 64
    header = (variant(alg, 3) + struct.pack("<qIQQ", t, digits, period, window)
              + bytes([last_step is not None]) + struct.pack("<QQ", last_step or 0, counter)
              + bytes([hotp_digits, len(key)]) + key.ljust(64, b"\0"))
    assert len(header) == 115
    return header + code.encode()


def b32(text: str, secret: bytes = b"", *, alg=0, digits=6, period=30) -> bytes:
    assert len(secret) <= 40
    header = struct.pack("<BIQB", alg, digits, period, len(secret)) + secret.ljust(40, b"\0")
    assert len(header) == 54
    return header + text.encode()


def qr(issuer: str, account: str, secret: bytes, *, kind=0, alg=0, digits=6, period=30) -> bytes:
    assert len(secret) <= 40
    header = struct.pack("<BBIQB", kind, alg, digits, period, len(secret)) + secret.ljust(40, b"\0")
    assert len(header) == 55
    return header + (issuer + US + account).encode()


SHA1 = b"12345678901234567890"
SHA256 = b"12345678901234567890123456789012"
SHA512 = SHA1 * 3 + b"1234"
JSON = 1  # ContentType::Json in json_bodies
TEXT = 4  # ContentType::Text


def json_body(ct: int, body: str) -> bytes:
    return variant(ct, 7) + body.encode()


CORPUS = {
    # RFC 6238 Appendix B and RFC 4226 Appendix D vectors, a spaced code, a replay, bad params.
    "otp_verify": {
        "rfc6238-sha1-59": otp(0, 59, SHA1, "287082"),
        "rfc6238-sha256-8digits": otp(1, 1111111109, SHA256, "68084774", digits=8),
        "rfc6238-sha512-2603": otp(2, 20000000000, SHA512, "47863826", digits=8),
        "spaced-code": otp(0, 1234567890, SHA1, " 005 924\n"),
        "replay-floor": otp(0, 59, SHA1, "287082", last_step=1),
        "rfc4226-hotp": otp(0, 0, SHA1, "755224", counter=0, window=0),
        "zero-period": otp(0, 59, SHA1, "287082", period=0),
        "fullwidth-digits": otp(0, 59, SHA1, "２８７０８２"),
    },
    # RFC 4648 / security doc §4.3 secrets, typed forms, issuer and account names with separators.
    "base32_secret": {
        "example": b32("JBSWY3DPEHPK3PXP" + US + "Example" + US + "alice@google.com",
                       bytes.fromhex("48656c6c6f21deadbeef")),
        "rfc-seed-grouped": b32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq" + US + "Acme Co" + US + "bob smith",
                                SHA1),
        "padding-and-case": b32(" JbSw Y3dP\tEHPK 3PXP======\n" + US + "A:B&c=d" + US + "x:y?z#", b"\xff"),
        "trailing-bits": b32("AAAAAAAAAAAAAAAAAAAAAAAAAD" + US + "Zürich" + US + "ünïcødé@exämple.com",
                             b"\0" * 16, alg=1, digits=8, period=60),
        "invalid": b32("JBSWY3DPEHPK3PX1" + US + "" + US + "", b""),
    },
    # kind: even = SVG, odd = PNG at scale kind / 2 % 4.
    "qr_code": {
        "example-svg": qr("Example", "alice@google.com", bytes.fromhex("48656c6c6f21deadbeef")),
        "png-scale-1": qr("Acme Co", "bob smith", SHA1, kind=3),
        "non-default-params": qr("A:B&c=d", "x:y?z#", SHA512[:40], kind=5, alg=2, digits=8, period=60),
        "unicode-max-email": qr("Zürich", "ü" * 60 + "@" + "é" * 60 + ".example", SHA1),
    },
    "recovery_code": {
        "grouped": bytes(10) + b"abcd-efgh-jkmn-pqrs",
        "upper-spaced": bytes(range(10)) + b"  ABCD EFGH JKMN PQRS\n",
        "mixed": b"\xff" * 10 + b"AbCd-eFgH-jKmN-pQrS",
        "too-long": bytes(10) + b"abcdefghjkmnpqrs abcdefghjkmnpqrs",
        "digit-one": bytes(10) + b"abcd-efgh-jkmn-pqr1",
    },
    "email": {
        "plain": b"alice@example.com",
        "case-space": b"  Alice.Smith@Example.COM ",
        "plus-tag": b"john.doe-99+tag@sub.example.co.uk",
        "unicode": "Jürgen@bücher.example".encode(),
        "fullwidth": "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ".encode(),
        "quoted": b'"a b"@example.com',
        "no-tld": b"alice@example",
    },
    # password, then U+001F-separated context words; header: default policy?, min length.
    "password": {
        "ok": b"\x01\x00" + b"correct horse battery",
        "common": b"\x00\x00" + b"PASSWORD1",
        "context": b"\x00\x00" + ("alice2024alice!" + US + "alice").encode(),
        "twostep": b"\x01\x00" + b"twostep-twostep",
        "nfd": b"\x01\x00" + "cafe\u0301 au lait!!".encode(),
        "emoji": b"\x00\x04" + ("🔐" * 12).encode(),
        "too-long": b"\x01\x00" + b"x7" * 70,
    },
    "json_bodies": {
        "sign-up": json_body(JSON, '{"email":"alice@example.com","password":"correct horse battery"}'),
        "verify": json_body(JSON, '{"login_token":"abc","method":"totp","code":"287082"}'),
        "confirm": json_body(JSON, '{"enrollment_id":"e","code":"123456","name":"Phone"}'),
        "reauth-nulls": json_body(JSON, '{"password":null,"method":"recovery_code","code":"abcd-efgh-jkmn-pqrs"}'),
        "empty-text": json_body(TEXT, "  \n"),
        "wrong-type": json_body(TEXT, '{"email":1}'),
        "deep": json_body(JSON, "[" * 200 + "]" * 200),
    },
    # header: master key (32), nonce (12), bit to flip (2); then bytes.
    "sealed_secret": {
        "key-hex": bytes(46) + b"  " + b"0123456789abcdefABCDEF" * 2 + b"0123456789abcdefABCD \n",
        "totp-secret": bytes(range(32)) + bytes(12) + b"\x05\x40" + SHA1,
        "short": b"\x07" * 46 + b"\x00\x01\x02",
    },
    "user_agent": {
        "chrome-linux": b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
        "firefox-windows": b"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:130.0) Gecko/20100101 Firefox/130.0",
        "safari-ios": b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
        "curl": b"curl/8.5.0",
        "markup": b"<script>alert(1)</script>",
    },
    # fields split at 0x1f: public key, signature, method, path, timestamp, body, subscription JSON.
    "push_device": {
        "answer": b"\x1f".join([
            b"BHxf3Sx1XrK9r9P0V6V2ue8gUEwbCnG5NS1lGFQKy0rBOnjv4Q9yW3Gl0H9Q7bS1m0Yl8LJm7YH2O2D5p9XqQ0", b"x" * 86,
            b"POST", b"/api/v1/push/challenges/abc/answer", b"1767225600", b'{"decision":"approve","number":"42"}',
            b'{"endpoint":"https://push.example/abc","keys":{"p256dh":"BAAA","auth":"AAAAAAAAAAAAAAAAAAAAAA"}}',
        ]),
        "pending": b"\x1f".join([
            b"", b"", b"GET", b"/api/v1/push/challenges?wait=25", b"1767225600", b"",
            b'{"endpoint":"http://127.0.0.1:9/x","keys":{"p256dh":"x","auth":"y"}}',
        ]),
    },
}


def main() -> int:
    for target, seeds in CORPUS.items():
        folder = SEEDS / target
        folder.mkdir(parents=True, exist_ok=True)
        # Only its own files: regression inputs copied into seeds/ by hand stay.
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
    print(f"wrote {sum(map(len, CORPUS.values()))} seeds for {len(CORPUS)} targets under {SEEDS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
