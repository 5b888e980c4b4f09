"""Request body parsing. Its own module: DRF imports it while loading its settings, before the rest of the API."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus: a body nested too deeply to parse is a 400 like any other malformed JSON.

    json.loads gives up on a body like [[[[... thousands deep with RecursionError, which DRF's parser does not
    catch (it turns ValueError only into a ParseError), so it would surface as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
