"""Evidence discovery and reading: the I/O edge for files, compressed files and archives.

Files are identified by content (their first lines), not by name alone. Compression is
recognised by magic bytes; tar and zip backups are read member by member, never extracted to
disk, with member names checked (no absolute paths, no ``..``) and sizes bounded. Evidence is only
ever opened for reading. Part of the evidence of a break-in is written by the attacker, so:

* **Every entry met is accounted for.** Walking an evidence directory never follows a link
  and never opens anything that is not a regular file (the type is checked with ``lstat`` before
  any ``open``, and again on the open descriptor): a symbolic link is recorded with its target,
  not followed (it can lead out of the evidence, to a device, or into a loop); a FIFO, socket or
  device is recorded as such, never opened (opening a FIFO blocks until something writes to it).
  Each becomes a candidate of role ``skipped`` whose ``issue`` the ingest records.
* **An archive member is identified by its position**, not its name: the ``n``-th member named
  ``var/log/secure`` is ``var/log/secure#n`` (``member`` is that reference; ``loc`` says where its
  bytes are), so a second member of the same name never hides the first. Link and device members
  are not content: recorded with their target, never read in place of a regular member.
* **What is hashed is what is read.** A file is read up to the size it had when it was found,
  never further; one that changed while it was acquired is reported (``acquisition_change``).
* **Decompression is bounded** (``DecompressionLimits`` from the case config): past a ratio or a
  size a compressed stream stops, what was read before is kept and the stop is a ``ReadProblem``
  at that offset. Memory stays bounded whatever the ratio.
* **Members cost the same however many there are.** A tar or zip is listed once; a member is
  read at its offset (a plain tar, a zip's local header) — a compressed tar is listed in one
  streaming pass and, when members are read, decompressed once into an unnamed temporary file
  (the spool) that is read at offsets.

The package, each module importing only those named before it: ``model`` (the candidate, its reading, its
problems), ``files`` (opening regular files, bounded byte ranges), ``compression`` (bounded
decompression), ``members`` (an archive member's content: zip members, the spool of a compressed
tar), ``reading`` (stored bytes, text and lines, hashing, acquisition change), ``binary`` (a binary
log's bytes: fixed-size records read past a sparse file's holes), ``journalctl`` (a journal file read
by journalctl), ``identify`` (format, role, host and kind), ``archives`` (listing tar and zip
members), ``discovery`` (the walk).
"""

from logsalvage.sources.compression import DecompressingStream
from logsalvage.sources.discovery import discover
from logsalvage.sources.identify import detect_format, with_declared_logformats
from logsalvage.sources.members import release_spools
from logsalvage.sources.model import Candidate, Reading, ReadProblem
from logsalvage.sources.reading import (CR_LINE_ENDS, acquisition_change, hash_input, open_text_stream, read_small,
                                        sha256_of, stream_lines)

__all__ = ["CR_LINE_ENDS", "Candidate", "DecompressingStream", "ReadProblem", "Reading", "acquisition_change",
           "detect_format", "discover", "hash_input", "open_text_stream", "read_small", "release_spools",
           "sha256_of", "stream_lines", "with_declared_logformats"]
