r"""Stand-ins shared by the tests: a crafted pickle and a disk that fills up."""


class Payload:
    r"""Unpickling this runs ``open(marker, 'w')``: a stand-in for any code
    a crafted file could run."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


class FullDisk:
    r"""A file on a disk with no room left after ``room`` bytes."""
    def __init__(self, file, room):
        self.file, self.room = file, room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            raise OSError(28, 'No space left on device')
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
