"""`malaria-detect`: sign in, submit a sample's field photographs or cells, read its result, save its report."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import requests
from tqdm import tqdm

from malaria_detect_client import __version__, auth, uploads
from malaria_detect_client.api import Api
from malaria_detect_client.errors import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_REFUSED,
    AuthError,
    ClassificationError,
    ClientError,
    RefusedError,
    UsageError,
)

SERVER_ENV = "MALARIA_DETECT_SERVER"
PASSWORD_ENV = "MALARIA_DETECT_PASSWORD"
API_KEY_ENV = "MALARIA_DETECT_FIREBASE_API_KEY"
EMULATOR_ENV = "FIREBASE_AUTH_EMULATOR_HOST"
POLL_SECONDS = 2.0


def say(message: str) -> None:
    """Messages go to stderr (beside the progress bars, without breaking them); results go to stdout."""
    tqdm.write(message, file=sys.stderr)


def server_from(args, credentials: auth.Credentials | None = None) -> str:
    server = args.server or os.environ.get(SERVER_ENV) or (credentials.server if credentials else "")
    if not server:
        raise UsageError(f"Which server? Give --server URL or set {SERVER_ENV}.")
    return auth.check_server_url(server)


def signed_in(args) -> tuple[Api, auth.Credentials]:
    credentials = auth.credentials_load()
    server = server_from(args, credentials)
    if server != credentials.server:
        raise AuthError(f"You are signed in to {credentials.server}, not {server}: run `malaria-detect login` there.")
    session = requests.Session()
    return Api(server, auth.TokenSource(credentials, session), session, say=say), credentials


# -- login, logout --------------------------------------------------------------------------------------


def login(args) -> int:
    server = server_from(args)
    session = requests.Session()
    emulator = args.emulator or os.environ.get(EMULATOR_ENV, "")
    api_key = args.api_key or os.environ.get(API_KEY_ENV, "")
    if not api_key:
        api_key, trusted_emulator = auth.firebase_api_key(server, session)
        # The emulator is only used when asked for here: a server cannot send a password to an address it names.
        if trusted_emulator and not emulator:
            raise UsageError(
                f"{server} is a development server that signs in with the Firebase Auth emulator at "
                f"{trusted_emulator}: give --emulator {trusted_emulator} (or set {EMULATOR_ENV})."
            )
    if server.startswith("http://") and not emulator:
        say(f"Warning: {server} is not HTTPS; your sign-in token would cross the network unencrypted.")
    password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"Password for {args.email}: ")
    if not password:
        raise UsageError("No password given.")
    signed = auth.sign_in(email=args.email, password=password, api_key=api_key, emulator=emulator, session=session)
    del password
    credentials = auth.Credentials(
        server=server, email=args.email, api_key=api_key, refresh_token=signed["refreshToken"], emulator=emulator
    )
    # The server must know this person before anything is kept: a wrong --server or a person in no lab is
    # told now, not at the first upload.
    tokens = auth.TokenSource(credentials, session, id_token=signed["idToken"])
    me = Api(server, tokens, session, say=say).get_json("me")
    path = auth.credentials_save(credentials)
    say(f"Signed in to {server} as {me['email']}, {me['role']} in {me['lab']['name']}.")
    say(f"Kept the sign-in (a refresh token, never the password) in {path}.")
    return EXIT_OK


def logout(args) -> int:
    path = auth.credentials_path()
    if auth.credentials_remove(path):
        say(f"Signed out: {path} removed.")
    else:
        say("You were not signed in.")
    return EXIT_OK


# -- submit ---------------------------------------------------------------------------------------------


def collected_date(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise UsageError(f"--collected must be a date as YYYY-MM-DD, not {text!r}.") from None


def patient_find(api: Api, identifier: str, *, create: bool) -> dict:
    """The lab's patient with exactly this identifier; created only when asked (a typo must not make a patient)."""
    identifier = identifier.strip()
    for patient in api.pages("patients", params={"search": identifier, "page_size": 500}):
        if patient["identifier"] == identifier:
            return patient
    if not create:
        raise RefusedError(
            f"There is no patient {identifier!r} in your lab. Check the identifier, or give --create-patient to "
            "create the patient."
        )
    patient = api.post("patients", json={"identifier": identifier}).json()
    say(f"Created patient {identifier}.")
    return patient


def upload_all(api: Api, sample_id: int, inputs: uploads.Inputs, kind: str, *, quiet: bool) -> tuple[int, list]:
    """Every batch sent in turn: (how many were accepted, the rejected files with the server's reasons)."""
    accepted, rejected = 0, []
    path = f"samples/{sample_id}/{kind}" if kind == "fields" else f"samples/{sample_id}/images"
    with tqdm(total=inputs.bytes, unit="B", unit_scale=True, unit_divisor=1024, desc="Uploading", disable=quiet) as bar:
        for batch in uploads.batches(inputs.uploads, uploads.BATCH_LIMITS[kind]):
            data, content_type = uploads.multipart(batch, kind)
            body = uploads.ProgressBody(data, bar, sum(upload.size for upload in batch))
            response = api.post(
                path, body=body, rewind=body.rewind, headers={"Content-Type": content_type}, ok=(202, 400)
            )
            outcome = response.json()
            if "accepted" not in outcome:  # a 400 about the request itself, not about its files
                raise api.refusal(response)
            accepted += len(outcome["accepted"])
            for item in outcome["rejected"]:
                rejected.append(item)
                say(f"Rejected {item['filename']}: {item['error']}")
    return accepted, rejected


def classification_follow(api: Api, sample_id: int, *, timeout: float, quiet: bool) -> dict:
    """Polls the sample until it is no longer processing; the bar counts its cells classified (or failed).

    A field photograph counts as one item until its red cells are found, so the total grows as fields are done.
    """
    deadline = time.monotonic() + timeout
    with tqdm(total=0, unit="cell", desc="Classifying", disable=quiet) as bar:
        while True:
            sample = api.get_json(f"samples/{sample_id}")
            counts = sample["counts"]
            bar.total = counts["total"]
            bar.n = counts["classified"] + counts["failed"]
            bar.refresh()
            if sample["status"] != "processing":
                return sample
            if time.monotonic() > deadline:
                raise ClassificationError(
                    f"Sample {sample_id} is still being classified after {timeout:g} s "
                    f"({bar.n} of {bar.total} done); see it later with `malaria-detect result {sample_id}` "
                    f"or at {api.page_url(f'samples/{sample_id}')}."
                )
            time.sleep(POLL_SECONDS)


def submit(args) -> int:
    inputs = uploads.collect(args.paths)
    kind = uploads.kind_of(inputs) if args.kind == "auto" else args.kind
    uploads.read_sizes(inputs)
    collected = collected_date(args.collected)
    if inputs.left_out:
        say(f"Left out {len(inputs.left_out)} file(s) in the folders that are not pictures.")
    api, _ = signed_in(args)
    patient = patient_find(api, args.patient, create=args.create_patient)
    body = {"patient": patient["id"], "notes": args.notes or ""}
    if collected:
        body["collected_at"] = collected
    sample = api.post("samples", json=body).json()
    sample_url = api.page_url(f"samples/{sample['id']}")
    archives = sum(upload.is_archive for upload in inputs.uploads)
    what = "field photograph(s)" if kind == "fields" else "cell image(s)"
    say(f"Sample {sample['id']} of patient {patient['identifier']}: {sample_url}")
    zipped = f" and {archives} ZIP archive(s) of them" if archives else ""
    say(f"Uploading {len(inputs.uploads) - archives} {what}{zipped}.")
    try:
        accepted, rejected = upload_all(api, sample["id"], inputs, kind, quiet=args.quiet)
    except ClientError as exc:
        # The sample exists by now: say where, so the rest can be added on its page rather than a new sample made.
        exc.message += f" Sample {sample['id']} holds what was accepted before this: {sample_url}"
        raise
    if not accepted:
        raise RefusedError(
            f"Nothing was accepted: {len(rejected)} file(s) rejected (reasons above). Sample {sample['id']} has no "
            f"pictures: {sample_url}"
        )
    if args.no_wait:
        say(f"{accepted} accepted; classification goes on in the server.")
        print(json.dumps(sample) if args.json else sample["id"])
        return EXIT_REFUSED if rejected else EXIT_OK
    sample = classification_follow(api, sample["id"], timeout=args.timeout, quiet=args.quiet)
    print(json.dumps(sample, indent=2) if args.json else result_text(sample, api))
    counts = sample["counts"]
    if not counts["classified"]:
        raise ClassificationError(
            f"No red cell could be classified ({counts['failed']} failed, {counts['total']} in all): {sample_url}"
        )
    if counts["failed"]:
        say(f"Warning: {counts['failed']} picture(s) or cell(s) could not be classified; see {sample_url}")
    if rejected:
        say(f"{len(rejected)} file(s) were rejected (reasons above): the sample was classified without them.")
        return EXIT_REFUSED
    return EXIT_OK


# -- result, report -------------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def result_text(sample: dict, api: Api) -> str:
    counts = sample["counts"]
    reason = f": {sample['result_reason']}" if sample.get("result_reason") else ""
    lines = [
        f"Sample {sample['id']}, patient {sample['patient_identifier']}, collected {sample['collected_at']}: "
        f"{sample['status'].replace('_', ' ')}",
        f"Result:       {sample['result'] or 'none yet'} (automatic){reason}",
    ]
    standing = [review for review in sample.get("reviews", []) if not review.get("stale_at")]
    if standing:
        review = standing[0]
        lines.append(
            f"Final result: {sample['final_result']} ({review['decision']} by {review['reviewer']}, "
            f"{review['created_at'][:10]})"
        )
    else:
        lines.append("Final result: not yet reviewed: preliminary")
    interval = ""
    if sample.get("parasitemia_low") is not None and sample.get("parasitemia_high") is not None:
        interval = f" (95 % interval {percent(sample['parasitemia_low'])} to {percent(sample['parasitemia_high'])})"
    lines += [
        f"Parasitemia:  {percent(sample['parasitemia'])}{interval}",
        f"Red cells:    {counts['classified']} classified: {sample['parasitized']} parasitized, "
        f"{sample['uninfected']} uninfected, {sample['uncertain']} uncertain; {counts['failed']} failed",
        f"Fields:       {sample.get('field_count', 0)}",
        f"Sample page:  {api.page_url('samples/' + str(sample['id']))}",
    ]
    return "\n".join(lines)


def result(args) -> int:
    api, _ = signed_in(args)
    sample = api.get_json(f"samples/{args.sample_id}")
    print(json.dumps(sample, indent=2) if args.json else result_text(sample, api))
    return EXIT_OK


def report(args) -> int:
    api, _ = signed_in(args)
    output = Path(args.output or f"sample-{args.sample_id}-report.pdf")
    response = api.get(f"samples/{args.sample_id}/report.pdf", headers={"Accept": "application/pdf"})
    if not response.content.startswith(b"%PDF-"):
        raise ClientError(f"The server sent something other than a PDF ({response.headers.get('Content-Type')}).")
    # Written next to its final name and renamed: an interrupted run never leaves half a report.
    handle, temporary = tempfile.mkstemp(dir=output.resolve().parent, prefix=".report-", suffix=".pdf")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(response.content)
        os.replace(temporary, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    say(f"Saved the report of sample {args.sample_id} to {output} ({len(response.content) / 1024:.0f} KB).")
    return EXIT_OK


# -- the command line -----------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help=f"the product's address, e.g. https://malaria.example.org (or {SERVER_ENV})")
    main_parser = argparse.ArgumentParser(
        prog="malaria-detect",
        description="Submit smear photographs to Malaria Detect and read the results.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    main_parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sign = commands.add_parser("login", parents=[common], help="sign in with your email and password")
    sign.add_argument("--email", required=True)
    sign.add_argument("--api-key", help=f"the Firebase web API key (default: the server's; or {API_KEY_ENV})")
    sign.add_argument(
        "--emulator", metavar="HOST:PORT", help=f"sign in with the Firebase Auth emulator (development; {EMULATOR_ENV})"
    )
    sign.set_defaults(run=login)
    commands.add_parser("logout", help="forget the kept sign-in").set_defaults(run=logout)

    send = commands.add_parser(
        "submit", parents=[common], help="create a sample, upload its pictures, wait for the result"
    )
    send.add_argument("--patient", required=True, help="the patient's identifier in your lab, e.g. MRN-1")
    send.add_argument("--create-patient", action="store_true", help="create the patient if the lab has none")
    send.add_argument("--collected", help="the date the smear was collected, YYYY-MM-DD (default: today)")
    send.add_argument("--notes", help="notes on the sample")
    send.add_argument("--kind", choices=["auto", *uploads.KINDS], default="auto", help="what the pictures are")
    send.add_argument("--timeout", type=float, default=900, help="seconds to wait for classification (default 900)")
    send.add_argument("--no-wait", action="store_true", help="upload and stop; print the sample's id")
    send.add_argument("--json", action="store_true", help="print the sample as JSON")
    send.add_argument("--quiet", action="store_true", help="no progress bars")
    send.add_argument("paths", nargs="+", metavar="PATH", help="pictures, folders of pictures, ZIP archives")
    send.set_defaults(run=submit)

    read = commands.add_parser("result", parents=[common], help="show a sample's result")
    read.add_argument("sample_id", type=int, metavar="SAMPLE_ID")
    read.add_argument("--json", action="store_true", help="the sample as the API gives it, as JSON")
    read.set_defaults(run=result)

    pdf = commands.add_parser("report", parents=[common], help="save a sample's PDF report")
    pdf.add_argument("sample_id", type=int, metavar="SAMPLE_ID")
    pdf.add_argument("-o", "--output", help="where to write it (default: sample-ID-report.pdf)")
    pdf.set_defaults(run=report)
    return main_parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        code = args.run(args)
    except ClientError as exc:
        say(f"malaria-detect: {exc.message}")
        code = exc.exit_code
    except KeyboardInterrupt:
        say("Interrupted.")
        code = 130
    sys.exit(code)
