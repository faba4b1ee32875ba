"""The web platform every node serves at /ui/: static files shipped in the package."""
