# Litecoin Core from Debian, for the evaluation stack in compose.yaml only (regtest).
# In production point [coins.LTC] rpc_url at your own fully synced node instead.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends litecoind \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --create-home --home-dir /var/lib/litecoin litecoin
USER 10002
WORKDIR /var/lib/litecoin
EXPOSE 19443
ENTRYPOINT ["litecoind", "-printtoconsole", "-datadir=/var/lib/litecoin"]
