from django.db import migrations

DISTRICTS = [
    ("110101", "东城区", "Dongcheng"), ("110102", "西城区", "Xicheng"), ("110105", "朝阳区", "Chaoyang"),
    ("110106", "丰台区", "Fengtai"), ("110107", "石景山区", "Shijingshan"), ("110108", "海淀区", "Haidian"),
    ("110109", "门头沟区", "Mentougou"), ("110111", "房山区", "Fangshan"), ("110112", "通州区", "Tongzhou"),
    ("110113", "顺义区", "Shunyi"), ("110114", "昌平区", "Changping"), ("110115", "大兴区", "Daxing"),
    ("110116", "怀柔区", "Huairou"), ("110117", "平谷区", "Pinggu"), ("110118", "密云区", "Miyun"),
    ("110119", "延庆区", "Yanqing"),
]


def seed(apps, schema_editor):
    District = apps.get_model("communities", "District")
    for code, name, name_en in DISTRICTS:
        District.objects.update_or_create(code=code, defaults={"name": name, "name_en": name_en})


class Migration(migrations.Migration):
    dependencies = [("communities", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
