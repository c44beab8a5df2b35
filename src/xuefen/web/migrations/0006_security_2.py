# Encrypt the 身份证号 already stored, then drop the clear column; end the
# DRF tokens that were stored in clear (users generate a new, hashed pair).

from typing import Any

from django.db import migrations, models


def encrypt_existing(apps: Any, schema_editor: Any) -> None:
    from xuefen.web import pii

    Teacher = apps.get_model('xuefen', 'Teacher')
    for pk, number in Teacher.objects.values_list('pk', 'id_number').iterator(chunk_size=2000):
        Teacher.objects.filter(pk=pk).update(id_number_enc=pii.encrypt(number), id_hmac=pii.digest(number))
    try:
        Token = apps.get_model('authtoken', 'Token')
    except LookupError:
        return
    Token.objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('xuefen', '0006_security'),
        ('authtoken', '0004_alter_tokenproxy_options'),
    ]

    operations = [
        migrations.RunPython(encrypt_existing, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='teacher',
            name='id_number',
        ),
        migrations.AlterField(
            model_name='teacher',
            name='id_hmac',
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
    ]
