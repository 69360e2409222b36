"""The emulator's local CA and server certificate."""

from cryptography import x509

from emulator.core.tls import DEFAULT_HOSTS, ensure_tls_files


def san(path):
    cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(value) for value in names.get_values_for_type(x509.DNSName)} | {
        str(value) for value in names.get_values_for_type(x509.IPAddress)}


def test_the_ca_is_made_once_and_kept(tmp_path):
    first = ensure_tls_files(tmp_path)
    ca = first.ca_cert.read_bytes()
    assert san(first.server_cert) == {"localhost", "127.0.0.1", "::1"}
    ensure_tls_files(tmp_path)
    assert first.ca_cert.read_bytes() == ca


def test_extra_host_names_get_a_new_server_certificate_from_the_same_ca(tmp_path):
    files = ensure_tls_files(tmp_path)
    ca = files.ca_cert.read_bytes()
    files = ensure_tls_files(tmp_path, (*DEFAULT_HOSTS, "emulator"))
    assert "emulator" in san(files.server_cert)
    assert files.ca_cert.read_bytes() == ca  # clients that trust the CA keep working
    issuer = x509.load_pem_x509_certificates(files.server_cert.read_bytes())[0].issuer
    assert issuer == x509.load_pem_x509_certificate(ca).subject
