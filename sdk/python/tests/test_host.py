"""Host-side tests of the SDK's pure parts: URL splitting, error words, Response helpers.

They run on an ordinary CPython against the bindings componentize-py generates for the
``connector`` world (``componentize-py -d WIT -w connector bindings DIR``; their functions
raise NotImplementedError outside a component, their types are real). The SDK's calls into
warden are tested end to end by tests/all/guests_python.rs. Run:

    PYTHONPATH=DIR:sdk/python/src python3 -m unittest discover -s sdk/python/tests
"""

import unittest

from wit_world.imports import wasi_http_types as types

from warden_sdk import InvalidRequest
from warden_sdk.errors import describe
from warden_sdk.http import Response, _split


class SplitTest(unittest.TestCase):
    def test_a_url_becomes_scheme_authority_and_path_with_query(self):
        scheme, authority, path = _split("http://127.0.0.1:8787/agent/results?x=1#frag", types)
        self.assertIsInstance(scheme, types.Scheme_Http)
        self.assertEqual(authority, "127.0.0.1:8787")
        self.assertEqual(path, "/agent/results?x=1")

    def test_https_other_schemes_and_an_empty_path(self):
        scheme, authority, path = _split("HTTPS://api.example", types)
        self.assertIsInstance(scheme, types.Scheme_Https)
        self.assertEqual((authority, path), ("api.example", "/"))
        scheme, _, _ = _split("ftp://files.example/x", types)
        self.assertEqual(scheme, types.Scheme_Other("ftp"))

    def test_urls_that_cannot_be_sent_say_why(self):
        for url, why in [
            ("127.0.0.1:8787/x", "no scheme"),
            ("://host/x", "the scheme is empty"),
            ("http:///x", "no host"),
            ("http://host?x=1", "a query needs a path"),
        ]:
            with self.assertRaises(InvalidRequest) as caught:
                _split(url, types)
            self.assertIn(why, str(caught.exception), url)
            self.assertIn(url, str(caught.exception))


class WordsTest(unittest.TestCase):
    def test_error_codes_read_as_words_with_their_payload(self):
        self.assertEqual(describe(types.ErrorCode_ConnectionRefused()), "connection refused")
        self.assertEqual(
            describe(types.ErrorCode_InternalError("the body was taken")),
            "internal error (the body was taken)",
        )


class ResponseTest(unittest.TestCase):
    def test_headers_by_any_case_text_and_ok(self):
        r = Response(status=201, headers=[("content-type", "text/plain")], body=b"caf\xc3\xa9 \xff")
        self.assertEqual(r.header("Content-Type"), "text/plain")
        self.assertIsNone(r.header("x-missing"))
        self.assertEqual(r.text(), "café \ufffd")
        self.assertTrue(r.ok)
        self.assertFalse(Response(status=404).ok)


if __name__ == "__main__":
    unittest.main()
