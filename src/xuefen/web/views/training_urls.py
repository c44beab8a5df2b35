from django.urls import path

from xuefen.web.views import training

urlpatterns = [
    path("training/", training.home, name="training-home"),
    path("training/apply/", training.apply, name="training-apply"),
    path("training/mine/", training.mine, name="training-mine"),
    path("training/report/<int:year>/", training.annual_report, name="training-report"),
    path("training/projects/<int:pk>/", training.project_detail, name="training-project"),
    path("training/projects/<int:pk>/score/", training.project_score, name="training-project-score"),
    path("training/projects/<int:pk>/decide/", training.project_decide, name="training-project-decide"),
    path("training/projects/<int:pk>/courses/", training.course_add, name="training-course-add"),
    path("training/projects/<int:pk>/classes/", training.class_open, name="training-class-open"),
    path("training/projects/<int:pk>/members/", training.research_members, name="training-research-members"),
    path("training/projects/<int:pk>/accept/", training.research_accept, name="training-research-accept"),
    path("training/classes/<int:pk>/", training.class_detail, name="training-class"),
    path("training/classes/<int:pk>/enrol/", training.class_enrol, name="training-class-enrol"),
    path("training/classes/<int:pk>/withdraw/", training.class_withdraw, name="training-class-withdraw"),
    path("training/classes/<int:pk>/sessions/", training.session_add, name="training-session-add"),
    path("training/classes/<int:pk>/results/", training.class_results, name="training-class-results"),
    path("training/classes/<int:pk>/close/", training.class_close, name="training-class-close"),
    path("training/classes/<int:pk>/survey/", training.class_survey, name="training-class-survey"),
    path("training/sessions/<int:pk>/", training.session_detail, name="training-session"),
    path("training/sessions/<int:pk>/tick/", training.session_tick, name="training-session-tick"),
    path("training/sign/<str:token>/", training.sign, name="training-sign"),
]
