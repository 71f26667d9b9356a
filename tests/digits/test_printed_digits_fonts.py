"""Which package a font face belongs to, for drawing printed digits evenly across packages."""
from pathlib import Path

from trainer.printed_digits import font_package


def test_font_package_is_the_folder_under_truetype_or_opentype():
    assert font_package(Path("/usr/share/fonts/truetype/roboto/unhinted/RobotoTTF/Roboto-Bold.ttf")) == "roboto"
    assert font_package(Path("/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Bold.ttf")) == "roboto"
    assert font_package(Path("/usr/share/fonts/opentype/urw-base35/C059-Bold.otf")) == "urw-base35"
    assert font_package(Path("/usr/share/fonts/truetype/Loose.ttf")) == "/usr/share/fonts/truetype"
    assert font_package(Path("/home/me/.local/share/fonts/Meter.otf")) == "/home/me/.local/share/fonts"
