"""The simulated camera: scenes with exact ground truth, rendered to frames, served as HTTP
MJPEG and written as video files."""
