"""Unit tests of the Python client's decisions and its validation before any RPC.

Run: PYTHONPATH=build/python /usr/bin/python3 -m unittest tests/python/test_client.py
"""
import time
import unittest

import miroir
from miroir import Mutation


class Classify(unittest.TestCase):
    def test_retryable_and_final_codes(self):
        self.assertEqual(miroir.classify_write_ack(0), "done")
        for code in (14, 10, 4, 8):  # UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED
            self.assertEqual(miroir.classify_write_ack(code), "retry", code)
        for code in (3, 5, 9, 7, 13, 12):
            self.assertEqual(miroir.classify_write_ack(code), "final", code)


class Validate(unittest.TestCase):
    def test_names_the_field(self):
        v = miroir.validate_mutation
        self.assertIsNone(v(Mutation.put("products", "k", {"a": 1})))
        self.assertIsNone(v(Mutation.put("products", "p" * 511, "{}")))
        self.assertIsNone(v(Mutation.delete("products", "k")))
        self.assertEqual(v(Mutation.put("products", "", "{}")), "pk: must not be empty")
        self.assertEqual(v(Mutation.put("products", "p" * 512, "{}")),
                         "pk: 512 bytes is over the limit of 511")
        self.assertEqual(v(Mutation.put("products", "é" * 256, "{}")),
                         "pk: 512 bytes is over the limit of 511")  # bytes, not characters
        self.assertTrue(v(Mutation.put("products", "k", "[1]")).startswith("body: must be a JSON object"))
        self.assertEqual(v(Mutation.put("products", "k", "{")), "body: malformed JSON")
        self.assertTrue(v(Mutation.put("products", "k", {"_miroir_v": 1})).startswith("body: field"))
        self.assertEqual(v(Mutation.put("", "k", "{}")), "index: must not be empty")
        self.assertEqual(v(Mutation.put("products", "k", "{}", -1)),
                         "expires_at_ms: must not be negative")


class SessionWithoutServer(unittest.TestCase):
    """Nothing listens on port 1 of loopback: what is sent fails UNAVAILABLE."""

    def setUp(self):
        self.client = miroir.Client(["127.0.0.1:1"], max_attempts=1, call_timeout=5)
        self.session = self.client.session()

    def tearDown(self):
        self.client.close()

    def test_bad_input_is_rejected_before_any_rpc(self):
        r = self.session.write([Mutation.put("products", "", "{}"),
                                Mutation.put("products", "a", "[]"),
                                Mutation.put("products", "ok", {"n": 1}),
                                Mutation.delete("products", "ok")])
        self.assertEqual([x.code for x in r], [3, 3, 14, 3])
        self.assertEqual([x.attempts for x in r], [0, 0, 1, 0])
        self.assertTrue(r[3].error.startswith("pk: 'ok' appears more than once"))
        with self.assertRaises(miroir.MiroirError) as e:
            self.session.get("products", "x" * 512)
        self.assertEqual(e.exception.code, 3)

    def test_unknown_outcome_raises_after_version_not_the_read_token(self):
        before_ms = int(time.time() * 1000)
        with self.assertRaises(miroir.MiroirError) as e:
            self.session.put("products", "k", {"n": 1})
        self.assertEqual(e.exception.code, 14)
        self.assertGreaterEqual(self.session.after_version("products", "k") >> 16, before_ms + 500)
        self.assertEqual(self.session.acked_version("products", "k"), 0)

    def test_bad_options(self):
        with self.assertRaises(miroir.MiroirError) as e:
            miroir.Client([])
        self.assertTrue(e.exception.message.startswith("workers:"))


if __name__ == "__main__":
    unittest.main()
