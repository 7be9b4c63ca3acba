"""moksori (목소리): train a Korean/English text-to-speech voice from your own recordings."""

__version__ = "0.1.0"
