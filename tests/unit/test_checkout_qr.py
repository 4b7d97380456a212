import pytest
import segno

from gateway.http import checkout


def test_the_payment_code_is_drawn_once_per_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    checkout.qr_svg.cache_clear()
    drawn: list[str] = []
    real = segno.make

    def counting(content: str, **kwargs: object) -> segno.QRCode:
        drawn.append(content)
        return real(content, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(segno, "make", counting)
    uri = "litecoin:rltc1qexample?amount=0.125"
    first = checkout.qr_svg(uri)
    assert first == checkout.qr_svg(uri)  # a reload of the page: not drawn again
    assert drawn == [uri]
    other = checkout.qr_svg(uri + "1")
    assert other != first and drawn == [uri, uri + "1"]
    # The cached drawing is the code of that URI, as segno draws it.
    assert first == real(uri, error="m").svg_inline(scale=5, border=2,
                                                    title=f"QR code: {uri}")
    checkout.qr_svg.cache_clear()
