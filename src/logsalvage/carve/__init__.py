"""Salvage: log records carved from raw disk images (see ``pipeline`` for the whole flow).

``images`` reads raw, split raw and E01 images and their partitions; ``scan`` finds candidate
record headers; ``pieces`` validates and cuts one chunk into records, heads and tails;
``reassemble`` rejoins records cut across non-contiguous blocks; ``pipeline`` runs it all as
resumable tasks and commits the records to a case.
"""
