"""The command line, ``python -m fvcore``: the parser and entry point (:mod:`.parser`) and one
function per subcommand (:mod:`.commands`)."""
from fvcore.cli.parser import get_parser, main

__all__ = ["get_parser", "main"]
