"""The ``placeprint`` command line (thin: parses, calls the library, prints).

Errors a user can cause print one line and exit with status 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from placeprint import __version__
from placeprint.errors import PlaceprintError

app = typer.Typer(
    help="placeprint: where was this taken? Compact visual place recognition.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
index_app = typer.Typer(help="Build compact place indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")


def _add_crossview() -> None:
    from placeprint.crossview.cli import crossview_app

    app.add_typer(crossview_app, name="crossview")


_add_crossview()


def _add_synth() -> None:
    from placeprint.synth.cli import synth_cmd

    app.command("synth")(synth_cmd)


def _add_geocontext() -> None:
    from placeprint.geocontext.cli import geocontext_app

    app.add_typer(geocontext_app, name="geocontext")
    from placeprint.midlevel.cli import midlevel_app

    app.add_typer(midlevel_app, name="midlevel")


_add_synth()
_add_geocontext()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"placeprint {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """placeprint: where was this taken?"""


@index_app.command("build")
def index_build(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="DIR_OR_MANIFEST",
            help="Folder of images (route order = file names; positions from EXIF GPS), a "
            "manifest CSV (path,lat,lon,...), a shard list (.txt: folders and manifests, one "
            "a line, in order) or a .npy (n, d) of descriptors.",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index file to write.")],
    describer: Annotated[
        str | None,
        typer.Option(
            help="Describer for images (default: seqslam for routes without positions, "
            "cnn_netvlad for geotagged photos)."
        ),
    ] = None,
    describer_options: Annotated[
        str | None,
        typer.Option(
            help="Options of --describer as a JSON object, e.g. '{\"layer\": 10}' "
            "(see the describer's docstring)."
        ),
    ] = None,
    paired: Annotated[
        Path | None,
        typer.Option(
            help="Same places under another condition (folder or .npy, rows aligned with "
            "the first rows of SOURCE): learns a condition-invariant projection."
        ),
    ] = None,
    code_size: Annotated[
        int | None,
        typer.Option(help="Bytes per code (default: the largest that keeps --budget)."),
    ] = None,
    budget: Annotated[
        float, typer.Option(help="Bytes a place, all-in, used to pick the code size.")
    ] = 8.0,
    bits: Annotated[int, typer.Option(help="Bits per quantized dimension (1-4).")] = 1,
    key_bits: Annotated[
        int | None, typer.Option(help="Key length in bits (default: automatic).")
    ] = None,
    cells: Annotated[
        str,
        typer.Option(
            help="Geotagged sources: S2 cells for the cell classifier and albums: auto "
            "(for 2,000+ photos), none, or world (the real photo-location partition)."
        ),
    ] = "auto",
    verify_top: Annotated[
        int | None,
        typer.Option(
            help="Geotagged sources: database photos each answer is verified against at "
            "most (default 100, 25 at a time until one verifies strongly; more: surer "
            "answers, slower; locate and serve use the same)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Describe and encode on a local Dask cluster of this many workers."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Describe and encode on the Dask cluster at this address."),
    ] = None,
    shard_size: Annotated[int, typer.Option(help="Images a Dask task describes.")] = 500,
    codec_from: Annotated[
        Path | None,
        typer.Option(
            help="Describe and encode as this index does (its describer state and codec), "
            "so the two can be merged with `placeprint index merge`."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Build a compact overloaded-hash index (and, from geotagged photos, a geolocator).

    The index and its side files are replaced as one thing: a failed or killed build
    leaves the old index working (``placeprint.indexfiles``).
    """
    import math

    from placeprint.codec import CoarseCodec
    from placeprint.codec.coarse import largest_code_size
    from placeprint.codec.sample import fit_on_sample
    from placeprint.index import OverloadedIndex
    from placeprint.index.overloaded import code_size_for_budget
    from placeprint.indexfiles import building
    from placeprint.sources import describe_source, manifest_warnings, source_positions

    # every option is checked before any work
    if cells not in CELL_CHOICES:
        raise PlaceprintError(f"--cells must be one of {', '.join(CELL_CHOICES)}, got {cells!r}")
    if not 1 <= bits <= 4:
        raise PlaceprintError(f"--bits must be 1-4, got {bits}")
    if key_bits is not None and not 1 <= key_bits <= 24:
        raise PlaceprintError(f"--key-bits must be 1-24, got {key_bits}")
    if code_size is not None and not 1 <= code_size <= 8:
        raise PlaceprintError(f"--code-size must be 1-8 bytes, got {code_size}")
    if not math.isfinite(budget) or budget <= 0:
        raise PlaceprintError(f"--budget must be a positive number of bytes, got {budget}")
    if not source.exists():
        raise PlaceprintError(f"not found: {source}")
    if paired is not None and not paired.exists():
        raise PlaceprintError(f"not found: {paired}")
    if workers is not None and scheduler is not None:
        raise PlaceprintError("give --workers (a local cluster) or --scheduler, not both")
    if workers is not None and not 1 <= workers <= 256:
        raise PlaceprintError(f"--workers must be 1-256, got {workers}")
    if shard_size < 1:
        raise PlaceprintError(f"--shard-size must be >= 1, got {shard_size}")
    if verify_top is not None and not 1 <= verify_top <= 1000:
        raise PlaceprintError(f"--verify-top must be 1-1000, got {verify_top}")
    template = None
    if codec_from is not None:
        if describer is not None or paired is not None or code_size is not None:
            raise PlaceprintError("--codec-from takes the describer and codec of that index")
        if not codec_from.is_file():
            raise PlaceprintError(f"index not found: {codec_from}")
        template = OverloadedIndex.load(codec_from)
    if describer is not None:
        from placeprint import describe

        if describer not in describe.catalog():
            raise PlaceprintError(
                f"unknown describer {describer!r}: see `placeprint describe --list`"
            )
    options = _describer_options(
        describer_options, describer, "--codec-from" if codec_from is not None else None
    )
    runner = contextlib.nullcontext()
    if (workers is not None or scheduler is not None) and source.suffix != ".npy":
        from placeprint.distributed.runner import DaskRunner

        runner = DaskRunner(
            scheduler, workers, shard_size, output.parent / f".{output.name}.shards", quiet=quiet
        )
    with runner as dask_runner, building(output) as build:
        state_file = build.side("describer")
        if describer is None and source.suffix != ".npy":
            from placeprint.locate import DEFAULT_PHOTO_DESCRIBER
            from placeprint.sources import is_manifest

            if is_manifest(source) or _any_geotagged(source):
                describer = DEFAULT_PHOTO_DESCRIBER
        if template is not None:
            from placeprint.indexfiles import side_path

            template_state = side_path(codec_from, "describer")
            X, config, items = describe_source(
                source, template.describer, progress=not quiet, state_file=template_state,
                runner=dask_runner,
            )  # fmt: skip
            if "state" in config:
                from placeprint.atomic import atomic_write_bytes

                atomic_write_bytes(state_file, template_state.read_bytes())
        else:
            X, config, items = describe_source(
                source,
                {"name": describer, **options} if describer else None,
                progress=not quiet,
                fit_state_to=state_file,
                positives=paired if paired is not None and paired.is_dir() else None,
                runner=dask_runner,
            )
        fits = largest_code_size(len(X), X.shape[1], bits)
        if fits < 1 and template is None:  # a codec from another index fits nothing here
            raise PlaceprintError(
                f"{len(X)} descriptors of {X.shape[1]} dimensions are too few for an index"
            )
        P = None
        if paired is not None:
            P, _, _ = describe_source(
                paired,
                config if config["name"] != "npy" else None,
                progress=not quiet,
                state_file=state_file,
                runner=dask_runner,
            )
            P = P[: len(X)]
        positions = None if source.suffix == ".npy" else source_positions(source, items)
        for line in manifest_warnings(source):
            typer.echo(f"warning: {line}", err=True)
        if source.suffix != ".npy":
            _write_places(source, items, positions, output, build, quiet)
        if positions is not None:
            _build_geolocator(X, positions, items, config, output, build, cells, quiet, verify_top)
        if template is not None:
            codec = template.codec
        else:
            if code_size is None:
                code_size = min(code_size_for_budget(len(X), budget), fits)
            codec = fit_on_sample(CoarseCodec(code_size=code_size, bits_per_dim=bits), X, P)
        index = OverloadedIndex(codec, key_bits=key_bits, describer=config)
        if dask_runner is not None:
            index.add_codes(dask_runner.encode(codec, X))
        else:
            index.add(X)
        index.generation = build.generation
        size = index.save(output)  # the switch: the new set replaces the old one here
        build.committed = True
    if dask_runner is not None and dask_runner.work_dir is not None:
        import shutil

        shutil.rmtree(dask_runner.work_dir, ignore_errors=True)  # finished: no resume needed
    if not quiet:
        typer.echo(
            f"wrote {output}: {index.ntotal} places, {index.bytes_per_place():.3f} bytes/place "
            f"all-in, {size} bytes on disk"
        )
        if index.bytes_per_place() > budget:
            shared = index.nbytes().get("codec_state", 0)
            typer.echo(
                f"note: above the {budget:g}-byte budget because the codec's projection "
                f"({shared:,} bytes) is shared by only {index.ntotal:,} places; it is the same "
                f"size for any number of places, so a larger collection approaches "
                f"{index.codec.code_size + 1}-{budget:g} bytes a place"
            )
        if "state" in config:
            typer.echo(f"describer state (keep it next to the index): {state_file}")


CELL_CHOICES = ("auto", "none", "world")


def _describer_options(text: str | None, describer: str | None, state_from: str | None) -> dict:
    """``--describer-options`` checked before any work: a JSON object the describer takes.
    ``state_from``: the option given that already fixes the describer (then none may be)."""
    if text is None:
        return {}
    if state_from is not None:
        raise PlaceprintError(f"--describer-options cannot be combined with {state_from}")
    if describer is None:
        raise PlaceprintError("--describer-options needs --describer")
    try:
        options = json.loads(text)
    except ValueError:
        raise PlaceprintError(f"--describer-options must be a JSON object, got {text!r}") from None
    if not isinstance(options, dict) or {"name", "state"} & set(options):
        raise PlaceprintError("--describer-options must be a JSON object of its options")
    from placeprint import describe

    describe.get(describer, **options)  # a clear error for an option it does not take
    return options


@index_app.command("merge")
def index_merge(
    indexes: Annotated[list[Path], typer.Argument(help="Indexes to join, in route order.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index file to write.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Join indexes built with one codec (`index build --codec-from`) end to end.

    Places are renumbered in the order given; the place stores are merged, and the
    geolocators of geotagged parts are fitted again as one.
    """
    from placeprint.distributed.merge import merge_indexes

    if output.is_dir():
        raise PlaceprintError(f"{output} is a folder; -o names the index file to write")
    size = merge_indexes(list(indexes), output)
    if not quiet:
        typer.echo(f"wrote {output}: {len(indexes)} indexes joined, {size} bytes on disk")


@index_app.command("add")
def index_add(
    index: Annotated[Path, typer.Argument(help="Index to extend (replaced as one thing).")],
    source: Annotated[
        Path, typer.Argument(help="The next route segment: folder of images or manifest.")
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Append a new route segment without rebuilding the rest.

    The new images are described and encoded as the index's own places.
    """
    from placeprint.distributed.merge import add_segment

    size, added = add_segment(index, source, progress=not quiet)
    if not quiet:
        typer.echo(f"wrote {index}: {added} places added, {size} bytes on disk")


def _any_geotagged(folder: Path, probe: int = 8) -> bool:
    """Whether any of the first ``probe`` images of ``folder`` has an EXIF GPS position."""
    from placeprint.describe.images import list_images
    from placeprint.geo.exif import read_gps
    from placeprint.sources import is_manifest, is_shard_list, shard_list

    if is_shard_list(folder):
        first = shard_list(folder)[0]
        return is_manifest(first) or _any_geotagged(first, probe)
    if not folder.is_dir():
        return False
    for f in list_images(folder)[:probe]:
        try:
            read_gps(f)
            return True
        except PlaceprintError:
            continue
    return False


def _write_places(
    source: Path, items: list[str], positions, output: Path, build, quiet: bool
) -> None:
    """``OUTPUT.<generation>.places.sqlite``: each place's path, position, time, heading
    and sequence."""
    import numpy as np

    from placeprint.serve.store import write_place_store
    from placeprint.sources import is_manifest

    n = len(items)
    lat = lon = None
    if positions is not None:
        lat, lon, _ = positions
    timestamp, heading, group = np.full(n, np.nan), np.full(n, np.nan), [None] * n
    if is_manifest(source):
        from placeprint.geo.collection import read_manifest_rows

        c = read_manifest_rows(source).collection
        row = {str(Path(p)): i for i, p in enumerate(c.paths)}
        for k, f in enumerate(items):
            i = row.get(str(Path(f)))
            if i is None:
                continue
            if c.timestamp is not None:
                timestamp[k] = c.timestamp[i]
            if c.heading is not None:
                heading[k] = c.heading[i]
            if c.group is not None:
                group[k] = c.group[i] or None
    elif positions is not None:
        from placeprint.geo.collection import photo_extras

        heading, timestamp, group = photo_extras(items)
    path = write_place_store(
        build.side("places"),
        items,
        lat,
        lon,
        timestamp=timestamp,
        heading=heading,
        group=group,
        generation=build.generation,
    )
    if not quiet:
        typer.echo(f"wrote {path}: {n} places (paths, positions, times)")


def _build_geolocator(
    X,
    positions,
    items,
    config,
    output: Path,
    build,
    cells: str,
    quiet: bool,
    verify_top: int | None,
) -> None:
    """Fit and save ``OUTPUT.<generation>.geo`` from the images that have positions."""
    from placeprint.locate import build_geolocator

    lat, lon, have = positions
    if have.sum() < 3:
        typer.echo(f"only {int(have.sum())} image(s) have positions: no geolocator", err=True)
        return
    if not have.all() and not quiet:
        typer.echo(
            f"{int((~have).sum())} image(s) without a position are left out of the geolocator"
        )
    rows = [i for i in range(len(items)) if have[i]]
    from placeprint.duplicates import duplicate_of

    twins = duplicate_of([items[i] for i in rows])
    for j, first in twins.items():
        typer.echo(
            f"warning: {items[rows[j]]} is a copy of {items[rows[first]]}: "
            "left out of the geolocator (the route index keeps both)",
            err=True,
        )
    rows = [r for j, r in enumerate(rows) if j not in twins]
    if len(rows) < 3:
        typer.echo(f"only {len(rows)} distinct image(s) have positions: no geolocator", err=True)
        return
    base = output.parent.resolve()
    paths = []
    for i in rows:
        p = Path(items[i]).resolve()
        paths.append(str(p.relative_to(base)) if p.is_relative_to(base) else str(p))
    geo_file = build.side("geo")
    geo, size = build_geolocator(
        X[rows],
        lat[rows],
        lon[rows],
        paths,
        config,
        geo_file,
        cells,
        route_rows=rows,
        generation=build.generation,
        verify_top=verify_top,
        progress=not quiet,
    )
    if not quiet:
        cell_note = f", {geo.cells.n_cells} cells" if geo.uses_cells else ""
        typer.echo(
            f"wrote {geo_file}: geolocator of {len(rows)} geotagged images{cell_note}, {size} bytes"
        )


@app.command("describe")
def describe_cmd(
    images: Annotated[
        Path | None, typer.Argument(help="Folder of images to describe (sorted by name).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write descriptors (n, dim) to .npy.")
    ] = None,
    describer: Annotated[str, typer.Option(help="Describer name (see --list).")] = "seqslam",
    describer_options: Annotated[
        str | None,
        typer.Option(help="Options of --describer as a JSON object, e.g. '{\"size\": 8}'."),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="Saved state of a learning describer (e.g. INDEX.describer)."),
    ] = None,
    fit: Annotated[
        bool,
        typer.Option(help="Fit a learning describer on IMAGES first (state to -o + .describer)."),
    ] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the describers and exit.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the cache.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Describe a folder of images (cached), or list the describers with --list."""
    from placeprint import describe

    if list_:
        typer.echo(f"{'name':12s} {'family':9s} {'dim':>6s}  {'learns':6s}  summary")
        for name, entry in describe.catalog().items():
            try:
                d = describe.get(name)
                dim, learns = str(d.dim), "yes" if d.learns else "no"
            except (ImportError, PlaceprintError, AttributeError, NotImplementedError):
                dim, learns = "-", "?"
            typer.echo(f"{name:12s} {entry.family:9s} {dim:>6s}  {learns:6s}  {entry.summary}")
        return
    if images is None or output is None:
        raise PlaceprintError("give a folder of IMAGES and -o OUTPUT.npy (or --list)")
    if output.suffix != ".npy":
        raise PlaceprintError(f"output must end in .npy, got {output}")
    from placeprint.sources import describe_source

    fit_to = output.with_name(output.name + ".describer") if fit else None
    options = _describer_options(
        describer_options, describer, "--state" if state is not None else None
    )
    config = {"name": describer, **options}
    if state is not None:
        from placeprint.describe.base import Describer

        config = Describer.load(state).config()
    X, config, names = describe_source(
        images,
        config,
        progress=not quiet,
        state_file=state,
        fit_state_to=fit_to,
        cache=not no_cache,
    )
    _save_npy_atomic(output, X)
    if not quiet:
        typer.echo(f"wrote {output}: {X.shape[0]} x {X.shape[1]} ({config['name']})")


def _save_npy_atomic(path: Path, X) -> None:
    import numpy as np

    from placeprint.atomic import atomic_open

    if not path.parent.is_dir():
        raise PlaceprintError(f"folder does not exist: {path.parent}")
    with atomic_open(path) as fh:
        np.save(fh, X)


@app.command("match")
def match(
    index_path: Annotated[Path, typer.Argument(metavar="INDEX", help="Index file.")],
    query: Annotated[
        Path, typer.Argument(help="Folder of query frames (in order) or .npy (L, d).")
    ],
    length: Annotated[
        int | None, typer.Option(help="Use the last L frames (default: all).")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="Number of distinct answers.")] = 5,
    sliding: Annotated[
        bool, typer.Option(help="Report every frame (streaming) instead of the last.")
    ] = False,
    probes: Annotated[
        int | None, typer.Option(help="Buckets probed per frame (default: the matcher's).")
    ] = None,
    shards: Annotated[
        list[Path] | None,
        typer.Option(
            "--shard",
            help="Another index with INDEX's codec (repeatable): search them all as one map, "
            "positions numbered on after INDEX's places.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Match a query sequence against an index: where was the last frame taken?"""
    from placeprint.index import OverloadedIndex
    from placeprint.sequence.matcher import SequenceMatcher, StreamingMatcher
    from placeprint.sources import describe_source

    if not 1 <= k <= MAX_ANSWERS:
        raise PlaceprintError(f"-k must be 1-{MAX_ANSWERS}, got {k}")
    if probes is not None and not 1 <= probes <= MAX_PROBES:
        raise PlaceprintError(f"--probes must be 1-{MAX_PROBES}, got {probes}")
    index = OverloadedIndex.load(index_path)
    from placeprint.sources import state_path_for

    if query.suffix == ".npy" and query.is_file():
        # descriptors already (e.g. `placeprint describe FRAMES -o q.npy --state ...`): the
        # matcher checks that they have the index's dimensions
        from placeprint.sources import load_npy_descriptors

        X = load_npy_descriptors(query)
        names = [f"{query.name}[{i}]" for i in range(len(X))]
    else:
        X, _, names = describe_source(
            query,
            index.describer or None,
            progress=not quiet,
            state_file=state_path_for(index_path),
        )
    names = [Path(n).name for n in names]
    if length is not None:
        if length < 1:
            raise PlaceprintError("--length must be >= 1")
        if length > len(X):
            raise PlaceprintError(f"--length {length} is longer than the query ({len(X)} frames)")
    options = {} if probes is None else {"probes": probes}
    shards = list(shards or [])
    if shards and sliding:
        raise PlaceprintError("--shard searches the last frame: it does not go with --sliding")
    if sliding:
        stream = StreamingMatcher(index, length=length or len(X), **options)
        rows = []
        for i in range(len(X)):
            u = stream.update(X[i])
            rows.append({"frame": names[i], **u.to_dict()})
        if as_json:
            typer.echo(json.dumps(rows))
        else:
            typer.echo("frame\tposition\tconfidence\tops")
            for r in rows:
                c = r["confidence"]
                typer.echo(
                    f"{r['frame']}\t{r['position']}\t{c if c is None else round(c, 3)}\t{r['ops']}"
                )
        return
    if length is not None:
        X, names = X[-length:], names[-length:]
    if shards:
        result, files, where = _match_shards(index_path, index, shards, X, k, options)
    else:
        result = SequenceMatcher(index, **options).match(X, k=k)
        from placeprint.locate import route_positions

        where = route_positions(index_path) or {}
    found = [(int(p), float(s)) for p, s in zip(result.positions, result.scores, strict=True)]
    found = [(p, s) for p, s in found if p >= 0]  # no padding
    if not shards:
        files = _place_files(index_path, [p for p, _ in found])
    if as_json:
        answers = []
        for p, s in found:
            entry = {"position": p, "score": s, "file": files.get(p)}
            if where:
                entry["lat_lon"] = where.get(p)
            answers.append(entry)
        data = {
            "query": str(query),
            "frames": len(X),
            "last_frame": names[-1],
            "answers": answers,
            "confidence": result.to_dict()["confidence"],
            "ops": result.ops,
        }
        typer.echo(json.dumps(data))
        return
    typer.echo(
        f"query {query}: {len(X)} frames, last = {names[-1]}; "
        f"confidence {result.confidence:.3f}; {result.ops} operations"
    )
    if not found:
        typer.echo("no answer: no place of the index matched the query")
        return
    typer.echo("rank\tposition\tscore\tfile" + ("\tlat\tlon" if where else ""))
    for r, (p, s) in enumerate(found, 1):
        ll = where.get(p)
        extra = f"\t{ll[0]:.6f}\t{ll[1]:.6f}" if ll else ("\t-\t-" if where else "")
        typer.echo(f"{r}\t{p}\t{s:.4f}\t{files.get(p) or '-'}{extra}")


MAX_ANSWERS = 100
MAX_PROBES = 4096


def _match_shards(index_path: Path, index, shards: list[Path], X, k: int, options: dict):
    """Search INDEX and its shards as one map: the result, and the files and positions on
    Earth of its answers (global positions), read from each answer's own shard."""
    import numpy as np

    from placeprint.distributed.shards import ShardSet
    from placeprint.index import OverloadedIndex
    from placeprint.locate import route_positions

    paths = [index_path, *shards]
    parts = [index]
    for p in shards:
        if not p.is_file():
            raise PlaceprintError(f"index not found: {p}")
        part = OverloadedIndex.load(p)
        if part.describer != index.describer:
            raise PlaceprintError(f"{p} was described differently from {index_path}")
        parts.append(part)
    group = ShardSet(parts, **options)
    result = group.search(X, k=k)
    files, where, on_earth = {}, {}, {}
    for p in (int(q) for q in result.positions if q >= 0):
        i = int(np.searchsorted(group.offsets, p, side="right")) - 1
        local = p - int(group.offsets[i])
        name = _place_files(paths[i], [local]).get(local)
        if name:
            files[p] = name
        if i not in on_earth:  # a shard's geolocator is read once
            on_earth[i] = route_positions(paths[i]) or {}
        if local in on_earth[i]:
            where[p] = on_earth[i][local]
    return result, files, where


def _place_files(index_path: Path, positions: list[int]) -> dict[int, str]:
    """File names of the places ``positions`` from the index's place store (if it has one)."""
    from placeprint.serve.store import PlaceStore, store_path_for

    store_file = store_path_for(index_path)
    if not positions or not store_file.is_file():
        return {}
    with PlaceStore.open(store_file) as store:
        return {int(r["id"]): r["path"] for r in store.many(positions) if r["path"]}


@app.command("info")
def info(
    index_path: Annotated[Path, typer.Argument(metavar="INDEX", help="Index file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Places, bytes/place, codec and describer of an index."""
    from placeprint.index import OverloadedIndex

    index = OverloadedIndex.load(index_path)
    data = index.info()
    data["file_bytes"] = index_path.stat().st_size
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        typer.echo(f"{key:18s} {json.dumps(value) if isinstance(value, dict) else value}")


@app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="headline | validate | scaling | nordland | synthetic | describers | geolocation "
            "| serve"
        ),
    ],
) -> None:
    """Run a benchmark (prints a table, writes JSON and plots); options after NAME go to it."""
    from placeprint.evaluate.registry import runner

    runner(name)(list(ctx.args), prog=f"placeprint bench {name}")


@app.command("collect")
def collect_cmd(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder of geotagged images.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Manifest to write (CSV: path,lat,lon,...).")
    ],
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No progress or summary (files skipped still listed)."),
    ] = False,
) -> None:
    """Read the EXIF GPS of a folder's images into a manifest (CSV) of positions."""
    from placeprint.geo.collection import collect, write_manifest

    if output.suffix.lower() == ".parquet":
        raise PlaceprintError(f"collect writes CSV manifests; give -o NAME.csv, not {output}")
    collection, problems = collect(folder, progress=not quiet)
    if len(collection) == 0:
        first = f"; e.g. {Path(problems[0][0]).name}: {problems[0][1]}" if problems else ""
        raise PlaceprintError(
            f"no image in {folder} has a usable GPS position ({len(problems)} checked{first}); "
            "no manifest written"
        )
    write_manifest(collection, output)
    for path, reason in problems:
        typer.echo(f"skipped {path}: {reason}", err=True)
    if not quiet:
        total = len(collection) + len(problems)
        typer.echo(f"wrote {output}: {len(collection)} of {total} images have positions")


@app.command("cells")
def cells_cmd(
    source: Annotated[
        Path | None,
        typer.Argument(
            metavar="[MANIFEST]",
            help="Positions to partition (CSV with lat/lon columns); default: the real "
            "photo locations in the data folder (world/photo_locations_100k.csv).",
        ),
    ] = None,
    max_photos: Annotated[int, typer.Option(help="t1: split cells holding more photos.")] = 1000,
    min_photos: Annotated[int, typer.Option(help="t2: drop cells holding fewer photos.")] = 20,
    min_level: Annotated[int, typer.Option(help="Coarsest S2 level.")] = 1,
    max_level: Annotated[int, typer.Option(help="Finest S2 level.")] = 13,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Save the partition (for reuse).")
    ] = None,
    map_png: Annotated[Path | None, typer.Option("--map", help="Draw the partition (PNG).")] = None,
    geojson: Annotated[Path | None, typer.Option(help="Write the cells as GeoJSON.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """PlaNet's adaptive S2 cells: split until <= t1 photos a cell, drop cells under t2."""
    from placeprint.geo.cells import AdaptiveCells, read_photo_locations

    if source is None:
        lat, lon = read_photo_locations()
    else:
        from placeprint.geo.collection import read_manifest

        c = read_manifest(source)
        lat, lon = c.lat, c.lon
    cells = AdaptiveCells(max_photos, min_photos, min_level, max_level).fit(lat, lon)
    per_level = cells.counts_per_level()
    kept = int(cells.kept_.sum())
    summary = {
        "photos": len(lat),
        "kept": kept,
        "cells": cells.n_cells,
        "cells_per_level": {str(k): v for k, v in per_level.items()},
        "max_photos": max_photos,
        "min_photos": min_photos,
    }
    written = {}
    if output is not None:
        cells.save(output)
        written["cells"] = str(output)
    if map_png is not None:
        from placeprint.geo.maps import plot_cells

        title = f"{cells.n_cells} adaptive S2 cells (t1={max_photos}, t2={min_photos})"
        written["map"] = str(plot_cells(map_png, cells, title=title))
    if geojson is not None:
        from placeprint.evaluate.report import write_json

        write_json(geojson, cells.to_geojson())
        written["geojson"] = str(geojson)
    if as_json:
        typer.echo(json.dumps({**summary, "files": written}, indent=2))
        return
    typer.echo(
        f"{cells.n_cells} cells hold {kept} of {len(lat)} photos "
        f"(t1={max_photos}, t2={min_photos}, levels {min_level}-{max_level})"
    )
    typer.echo("level\tcells\tphotos")
    for level, n in per_level.items():
        photos = int(cells.counts_[cells.levels_ == level].sum())
        typer.echo(f"{level}\t{n}\t{photos}")
    for kind, path in written.items():
        typer.echo(f"{kind}: {path}")


def _index_or_env(index: Path | None, built_from: str = "") -> Path:
    """``--index``, else ``$PLACEPRINT_INDEX``, else a clear error."""
    if index is not None:
        return index
    env = os.environ.get("PLACEPRINT_INDEX")
    if not env:
        made = f"built by `placeprint index build` {built_from}".strip()
        raise PlaceprintError(f"give --index INDEX ({made}) or set PLACEPRINT_INDEX")
    return Path(env)


@app.command("locate")
def locate_cmd(
    photos: Annotated[
        list[Path], typer.Argument(metavar="PHOTO...", help="Photos (or folders of photos).")
    ],
    index: Annotated[
        Path | None,
        typer.Option(
            help="Index built from geotagged photos (its INDEX.geo is used); default: "
            "$PLACEPRINT_INDEX.",
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="Guesses to print per photo.")] = 3,
    album: Annotated[
        bool,
        typer.Option(help="The photos are one album/trip: smooth each by the others (HMM)."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the heat maps (PNG) and GeoJSON (default: ./locate)."),
    ] = None,
    no_map: Annotated[bool, typer.Option("--no-map", help="Do not write maps or GeoJSON.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    no_verify: Annotated[
        bool,
        typer.Option(
            "--no-verify",
            help="Do not check the answers against the matched database photos (geometric "
            "verification of local features).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Where was this photo taken? Top guesses with names, probability and radius, and a map."""
    from placeprint.geo.maps import format_km
    from placeprint.locate import PhotoLocator, write_outputs

    if top < 1:
        raise PlaceprintError("--top must be >= 1")
    if out is not None and out.exists() and not out.is_dir():
        raise PlaceprintError(f"--out must be a folder, and {out} is a file")
    index = _index_or_env(index, "from geotagged photos")
    locator = PhotoLocator(index, verify=not no_verify)
    if album and not locator.geo.uses_cells:
        typer.echo(
            "warning: --album needs an index with cells (2,000+ geotagged photos or "
            "--cells world); locating the photos one by one",
            err=True,
        )
    results = locator.locate(photos, progress=not quiet, album=album)
    from placeprint.geo.geolocator import MIN_CALIBRATION_ROWS
    from placeprint.locate import photo_detail_problem

    if not locator.geo.calibrated:
        typer.echo(
            "note: the probabilities are not calibrated (this collection has fewer than "
            f"{MIN_CALIBRATION_ROWS} photos to test them on); read them as scores",
            err=True,
        )
    folder = out or Path("locate")
    report = []
    for r in results:
        files = {} if no_map else write_outputs(r, folder)
        entry = {
            "photo": r.photo,
            **r.prediction.to_dict(),
            "files": {k: str(v) for k, v in files.items()},
        }
        entry["modes"] = entry["modes"][:top]
        report.append(entry)
        problem = photo_detail_problem(r.photo)
        entry["calibrated"] = bool(locator.geo.calibrated)
        entry["calibration_photos"] = locator.geo.calibration_count
        entry["calibrated_on"] = locator.geo.calibration_of(r.prediction)
        if problem:
            entry["warning"] = f"this photo cannot show where it was taken: {problem}"
            typer.echo(f"warning: {r.photo}: {entry['warning']}", err=True)
        if as_json:
            continue
        typer.echo(r.photo)
        typer.echo("  #  lat          lon           probability  radius      place")
        for i, m in enumerate(r.prediction.modes[:top], 1):
            radius = format_km(m.radius_km)
            typer.echo(
                f"  {i}  {m.lat:11.6f}  {m.lon:12.6f}  {m.probability:11.3f}  {radius:>10}  "
                f"{m.name or ''}{f'  (verified, {m.inliers} inliers)' if m.verified else ''}"
            )
        for kind, path in files.items():
            typer.echo(f"  {kind}: {path}")
    if as_json:
        typer.echo(json.dumps(report if len(report) > 1 else report[0], indent=2))


@app.command("serve")
def serve_cmd(
    index: Annotated[
        Path | None,
        typer.Option(
            help="Index to serve (built by `placeprint index build`); default: $PLACEPRINT_INDEX."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            help="Require this API token (`Authorization: Bearer T` or ?token=T); "
            "default: $PLACEPRINT_TOKEN.",
        ),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest image upload (MiB).")] = 20.0,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds of work a request may take (then 504, and its work stops)."),
    ] = 30.0,
    no_verify: Annotated[
        bool,
        typer.Option(
            "--no-verify", help="Do not check /locate answers against the matched photos."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    """Serve an index over HTTP: the API (OpenAPI at /docs) and the web page."""
    import socket

    from placeprint.serve.app import create_app, is_loopback

    index = _index_or_env(index)
    token = token if token is not None else (os.environ.get("PLACEPRINT_TOKEN") or None)
    if not 0 < port < 65536:
        raise PlaceprintError(f"--port must be 1-65535, got {port}")
    if not max_upload_mb > 0:
        raise PlaceprintError(f"--max-upload-mb must be > 0, got {max_upload_mb}")
    if not 0 < timeout <= 3600:
        raise PlaceprintError(f"--timeout must be in (0, 3600] seconds, got {timeout}")
    application = create_app(
        index,
        token=token,
        max_upload_bytes=int(max_upload_mb * 2**20),
        request_timeout_s=timeout,
        verify=not no_verify,
    )
    try:  # a clear one-line error when the address is taken or not ours
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host.strip("[]"), port))
    except (OSError, OverflowError) as err:
        raise PlaceprintError(f"cannot listen on {host}:{port}: {err}") from None
    if not is_loopback(host) and not token:
        typer.echo(
            f"warning: serving on {host} without --token: anyone who can reach this address "
            "can use the API",
            err=True,
        )
    import uvicorn

    if not quiet:
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"serving {index} at http://{shown}:{port}/ (API docs: /docs); Ctrl-C stops")
    uvicorn.run(
        application,
        host=host,
        port=port,
        workers=1,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
    )


def os_error_line(exc: BaseException) -> str | None:
    """One line for the file-system errors a user can cause (``None``: not one of them)."""
    import errno

    name = getattr(exc, "filename", None)
    where = f": {name}" if name else ""
    if isinstance(exc, UnicodeEncodeError) and isinstance(exc.object, str):
        text, i = exc.object, exc.start  # the offending name may sit inside a longer text
        lo = max(text.rfind(sep, 0, i) for sep in ("\n", "|", "\0")) + 1
        ends = [j for sep in ("\n", "|", "\0") if (j := text.find(sep, i)) >= 0]
        name = text[lo : min(ends, default=len(text))]
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return f"a file name is not valid UTF-8, rename it: {shown}"
    if isinstance(exc, UnicodeError):
        return f"a file name or text is not valid UTF-8: {exc}"
    if isinstance(exc, IsADirectoryError):
        return f"is a directory, not a file{where}"
    if isinstance(exc, NotADirectoryError):
        return f"not a directory{where}"
    if isinstance(exc, PermissionError):
        return f"permission denied{where}"
    if isinstance(exc, FileNotFoundError):
        return f"not found{where}"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on the device{where}: free some space and run again"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EDQUOT):
        return f"cannot write{where}: {exc.strerror}"
    return None


def main() -> None:
    """Entry point: run the app, turning our errors into one line and exit status 2."""
    try:
        app(standalone_mode=False)
    except PlaceprintError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except MemoryError:
        typer.echo("error: out of memory", err=True)
        sys.exit(2)
    except (OSError, UnicodeError) as exc:
        line = os_error_line(exc)
        if line is None:
            raise
        typer.echo(f"error: {line}", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - a user never sees a traceback
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click usage errors
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(2)
        if os.environ.get("PLACEPRINT_DEBUG"):
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc} (set PLACEPRINT_DEBUG=1 for "
            "the traceback)",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
