"""Frame sources for read-digits: image files and folders, video files, USB/V4L2 cameras, the Pi camera.

Every source is an iterable of `Frame`s in input order. Cameras are opened through OpenCV's
`VideoCapture` (an index such as 0 or a device path such as /dev/video2) or through `picamera2`
when it is installed ('pi'). A missing or busy camera is a clear `DeviceError`; in continuous mode
the camera is reopened with exponential back-off instead, so a daemon survives an unplugged cable.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.core.errors import InputError
from edge.seeing.image import load_gray
from edge.core.interpreter import DeviceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
PI_CAMERA = "pi"


@dataclass
class Frame:
    source: str  # file name, or "camera:0", "video.mp4"
    index: int  # frame number within the source (0 for a still image)
    image: np.ndarray | None  # gray or BGR uint8; None when the file could not be read
    error: str | None = None


def expand_images(paths: list[str | Path]) -> list[Path]:
    """Files as given, folders replaced by their image files in name order."""
    expanded: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not images:
                raise InputError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            expanded.extend(images)
        else:
            expanded.append(path)
    return expanded


def image_frames(paths: list[str | Path], keep_going: bool = False) -> Iterator[Frame]:
    """Still images through Pillow (any mode, with its size guard); a bad file stops the run unless
    `keep_going`, which yields it as a Frame with `error` set instead."""
    for path in expand_images(paths):
        try:
            yield Frame(str(path), 0, load_gray(path))
        except InputError as exc:
            if not keep_going:
                raise
            log.error("%s", exc)
            yield Frame(str(path), 0, None, str(exc))


def video_frames(path: str | Path, every: int = 1) -> Iterator[Frame]:
    """Frames of a video file (every `every`-th one), decoded by OpenCV."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError(f"{path}: OpenCV cannot open this video (unsupported format or corrupt)")
        index, produced = 0, 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % every == 0:
                produced += 1
                yield Frame(path.name, index, image)
            index += 1
        if produced == 0:
            raise InputError(f"{path}: no frames could be decoded")
    finally:
        capture.release()


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480), for camera and scene frame sizes."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must look like 640x480, not {text!r}") from None
    if not (16 <= width <= 16384 and 16 <= height <= 16384):
        raise InputError(f"--size {text}: each side must be between 16 and 16384 pixels")
    return width, height


def camera_spec(text: str) -> int | str:
    """'0' -> 0 (OpenCV index), '/dev/video2' or a stream URL stays a string, 'pi' -> picamera2."""
    return int(text) if text.isdigit() else text


class OpenCVCamera:
    """A USB/V4L2 camera through cv2.VideoCapture, asked for `size` (the driver may pick another)."""

    def __init__(self, spec: int | str, size: tuple[int, int] = (640, 480)):
        self.spec, self.size = spec, size
        if not log.isEnabledFor(logging.DEBUG):  # OpenCV's own probing warnings would bury our one-line error
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        self.capture = cv2.VideoCapture(spec)
        if not self.capture.isOpened():
            self.capture.release()
            raise DeviceError(f"camera {spec}: cannot open (not connected, no permission, or busy in another program)")
        self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])

    def read(self) -> np.ndarray:
        ok, image = self.capture.read()
        if not ok or image is None:
            raise DeviceError(f"camera {self.spec}: no frame (unplugged or busy)")
        return image

    def close(self) -> None:
        self.capture.release()


class PiCamera:
    """The Raspberry Pi camera through picamera2 (libcamera); frames come as BGR like OpenCV's."""

    def __init__(self, size: tuple[int, int] = (640, 480)):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise DeviceError("camera pi: picamera2 is not installed (sudo apt install python3-picamera2)") from None
        try:
            self.camera = Picamera2()
            # libcamera's "RGB888" is stored B, G, R in memory: OpenCV's channel order.
            self.camera.configure(self.camera.create_video_configuration(main={"size": size, "format": "RGB888"}))
            self.camera.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise DeviceError(f"camera pi: cannot start ({exc})") from None

    def read(self) -> np.ndarray:
        try:
            return self.camera.capture_array()
        except (RuntimeError, OSError) as exc:
            raise DeviceError(f"camera pi: capture failed ({exc})") from None

    def close(self) -> None:
        self.camera.close()


def open_camera(spec: int | str, size: tuple[int, int]) -> OpenCVCamera | PiCamera:
    return PiCamera(size) if spec == PI_CAMERA else OpenCVCamera(spec, size)


def camera_frames(spec: int | str, size: tuple[int, int] = (640, 480), *, continuous: bool = False,
                  max_frames: int | None = None, opener: Callable = open_camera,
                  sleep: Callable[[float], None] = time.sleep, max_backoff: float = 30.0) -> Iterator[Frame]:
    """Frames from a camera. Without `continuous` a missing camera or failed read raises DeviceError;
    with it, the camera is reopened after 0.5 s, 1 s, 2 s ... (at most `max_backoff`), forever."""
    delay, produced, camera = 0.5, 0, None
    name = f"camera:{spec}"
    try:
        while max_frames is None or produced < max_frames:
            try:
                if camera is None:
                    camera = opener(spec, size)
                    log.info("%s opened", name)
                image = camera.read()
            except DeviceError as exc:
                if camera is not None:
                    camera.close()
                    camera = None
                if not continuous:
                    raise
                log.warning("%s; retrying in %.1f s", exc, delay)
                sleep(delay)
                delay = min(max_backoff, delay * 2)
                continue
            delay = 0.5
            yield Frame(name, produced, image)
            produced += 1
    finally:
        if camera is not None:
            camera.close()
